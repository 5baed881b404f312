"""`convert_dataset`: write the internal form out as a YOLO, COCO or index-mask dataset.

Output layouts:
- YOLO: `images/`, `labels/` (one txt per image, empty for backgrounds) and `classes.txt`.
  Polygons are written as polygon rows (several parts of one object are joined into one ring by
  zero-width bridges), RLE masks are traced into polygons, box-only instances as box rows.
- COCO: `images/` and `annotations.json`; category ids are 1-based (class id + 1) with the
  names kept; polygons and RLE are kept as they are, crowd regions keep `iscrowd: 1`.
- masks (semantic labels): `images/`, `masks/` (one index PNG per image, same relative path and
  stem, pixel value = class id, 255 = ignored, VOC colour palette) and `classes.txt`; what
  `data.format: masks` reads back. The dataset must be in the semantic form
  (`dfseg.data.semantic`: instance labels are rasterised by `semantic_from_instances`).

Images keep their paths relative to the folder that contains all of them. They are copied by
default (the output then stands alone and survives moving or deleting the source); `symlink` links
to the originals instead (fast, no extra disk, but tied to the source location and not portable to
Windows). Nothing existing is ever overwritten: if any output file exists, nothing is written.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from dfseg.data.formats.issues import indented_list
from dfseg.data.semantic import annotation_to_index_map, save_index_png
from dfseg.errors import DfsegError
from dfseg.ops.masks import mask_to_polygons, merge_rings, rle_to_coco, segment_to_mask
from dfseg.structures import RLE, Dataset, ImageAnnotation, Polygons, Segment
from dfseg.structures.progress import ProgressCallback, ProgressEvent, report

ConvertFormat = Literal["yolo", "coco", "masks"]
ImageTransfer = Literal["copy", "symlink"]
COCO_FILE = "annotations.json"
CONVERT_TASK = "convert"


class ConvertError(DfsegError):
    """The output would overwrite existing files or is otherwise impossible to write."""


class ConvertReport(BaseModel):
    """What was written, and what the target format could not represent."""

    format: str
    out_dir: str
    images: int
    instances: int
    segments: int
    boxes_only: int
    dropped_crowd: int
    image_transfer: str
    files_written: int
    notes: list[str]
    skipped: list[str] = []


def convert_dataset(
    dataset: Dataset,
    out_dir: Path,
    format: ConvertFormat,
    images: ImageTransfer = "copy",
    progress: ProgressCallback | None = None,
    skip_invalid: bool = False,
) -> ConvertReport:
    """Write `dataset` as a new YOLO or COCO dataset in `out_dir`.

    Args:
        dataset: the internal form (as returned by `read_dataset`).
        out_dir: output folder; may exist, but none of the files to write may.
        format: "yolo", "coco" or "masks" (the last needs the semantic form).
        images: "copy" (default) or "symlink" the image files.
        progress: optional callback, one event per image.
        skip_invalid: write the dataset although reading it left something out (unreadable
            images, label rows with errors; listed in `skipped`). Without it, nothing is written
            then.

    Returns:
        Counts of images and instances written, notes on what the format dropped, and every
        image or row reading left out, with the reason.

    Raises:
        ConvertError: an output file already exists, two images would share a label file,
            "masks" for a dataset not in the semantic form, or reading left something out and
            `skip_invalid` is False (the error lists it all).
    """
    writer = _WRITERS.get(format)
    if writer is None:
        raise ConvertError(f"Cannot write format {format!r}; choose one of {sorted(_WRITERS)}")
    skipped = [f"{i.location()}: {i.message}" for i in dataset.issues if i.severity == "error"]
    if skipped and not skip_invalid:
        raise ConvertError(
            f"reading the dataset left {len(skipped)} image(s) or label row(s) out; nothing was "
            f"written. Fix them (see `dfseg check`), or pass --skip-invalid to convert without "
            f"them:\n{indented_list(skipped)}"
        )
    targets = image_targets(dataset.images, out_dir)
    report_ = ConvertReport(
        format=format,
        out_dir=str(out_dir),
        images=len(dataset.images),
        instances=0,
        segments=0,
        boxes_only=0,
        dropped_crowd=0,
        image_transfer=images,
        files_written=0,
        notes=[],
        skipped=skipped,
    )
    writer(dataset, out_dir, targets, images, report_, progress)
    if any(image.difficult.any() for image in dataset.images):
        report_.notes.append(f"VOC `difficult` flags are not representable in {format}; dropped")
    return report_


def image_targets(images: list[ImageAnnotation], out_dir: Path) -> list[Path]:
    """Where each image goes: `out_dir/images/<path relative to the images' common folder>`."""
    if not images:
        return []
    paths = [image.image_path.resolve() for image in images]
    common = Path(os.path.commonpath([p.parent for p in paths]))
    return [out_dir / "images" / p.relative_to(common) for p in paths]


def _companion_files(
    out_dir: Path, targets: list[Path], folder: str, suffix: str, what: str
) -> list[Path]:
    """The file beside each written image (`out_dir/<folder>/<same relative path><suffix>`).

    Raises:
        ConvertError: two images would share one (same name, other extension).
    """
    files = [
        out_dir / folder / t.relative_to(out_dir / "images").with_suffix(suffix) for t in targets
    ]
    if len(set(files)) != len(files):
        clash = next(p for p in files if files.count(p) > 1)
        raise ConvertError(
            f"two images would share the {what} file {clash} (same name, other extension); "
            "rename one of them"
        )
    return files


def _refuse_existing(paths: list[Path]) -> None:
    existing = [p for p in paths if p.exists() or p.is_symlink()]
    if existing:
        shown = ", ".join(str(p) for p in existing[:5]) + (" ..." if len(existing) > 5 else "")
        raise ConvertError(
            f"{len(existing)} output file(s) already exist: {shown}. Choose an empty output "
            "folder; dfseg never overwrites files."
        )


def _transfer(source: Path, target: Path, mode: ImageTransfer) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if mode == "symlink":
        target.symlink_to(source.resolve())
    else:
        shutil.copy2(source, target)


def _write_yolo(
    dataset: Dataset,
    out_dir: Path,
    targets: list[Path],
    mode: ImageTransfer,
    result: ConvertReport,
    progress: ProgressCallback | None,
) -> None:
    labels = _companion_files(out_dir, targets, "labels", ".txt", "label")
    _refuse_existing([*targets, *labels, out_dir / "classes.txt"])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "classes.txt").write_text("\n".join(dataset.class_names) + "\n")
    for done, (image, target, label) in enumerate(
        zip(dataset.images, targets, labels, strict=True), start=1
    ):
        _transfer(image.image_path, target, mode)
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("".join(_yolo_rows(image, result)))
        report(progress, ProgressEvent(CONVERT_TASK, completed=done, total=len(targets)))
    result.files_written = 2 * len(targets) + 1
    if result.dropped_crowd:
        result.notes.append(f"{result.dropped_crowd} crowd region(s) dropped (YOLO has no crowd)")


def _yolo_rows(image: ImageAnnotation, result: ConvertReport) -> list[str]:
    """Rows `class x1 y1 x2 y2 ...` (polygons) or `class cx cy w h`, normalised to [0, 1]."""
    scale = np.array([image.width, image.height], dtype=np.float64)
    rows = []
    for k in range(image.num_instances):
        if image.iscrowd[k]:
            result.dropped_crowd += 1
            continue
        ring = _single_ring(image.segments[k], image.height, image.width)
        if len(ring) >= 3:
            values = (ring / scale).clip(0.0, 1.0).ravel()
            result.segments += 1
        else:
            x1, y1, x2, y2 = image.boxes_xyxy[k].astype(np.float64)
            values = np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]) / np.tile(scale, 2)
            result.boxes_only += 1
        result.instances += 1
        rows.append(f"{int(image.labels[k])} " + " ".join(f"{v:.6f}" for v in values) + "\n")
    return rows


def _single_ring(segment: Segment | None, height: int, width: int) -> np.ndarray:
    """One [K, 2] pixel ring for a segment ([0, 2] when there is none)."""
    if segment is None:
        return np.zeros((0, 2), dtype=np.float32)
    if isinstance(segment, Polygons):
        return merge_rings(segment.rings)
    return merge_rings(mask_to_polygons(segment_to_mask(segment, height, width), min_area=1))


def _write_coco(
    dataset: Dataset,
    out_dir: Path,
    targets: list[Path],
    mode: ImageTransfer,
    result: ConvertReport,
    progress: ProgressCallback | None,
) -> None:
    json_path = out_dir / COCO_FILE
    _refuse_existing([*targets, json_path])
    content: dict[str, Any] = {
        "images": [],
        "annotations": [],
        "categories": [
            {"id": k + 1, "name": name, "supercategory": name}
            for k, name in enumerate(dataset.class_names)
        ],
    }
    for done, (image, target) in enumerate(zip(dataset.images, targets, strict=True), start=1):
        _transfer(image.image_path, target, mode)
        image_id = done
        content["images"].append(
            {
                "id": image_id,
                "file_name": target.relative_to(out_dir).as_posix(),
                "width": image.width,
                "height": image.height,
            }
        )
        for k in range(image.num_instances):
            entry = _coco_annotation(image, k, len(content["annotations"]) + 1, image_id, result)
            content["annotations"].append(entry)
        report(progress, ProgressEvent(CONVERT_TASK, completed=done, total=len(targets)))
    json_path.write_text(json.dumps(content))
    result.files_written = len(targets) + 1


def _coco_annotation(
    image: ImageAnnotation, k: int, annotation_id: int, image_id: int, result: ConvertReport
) -> dict[str, Any]:
    x1, y1, x2, y2 = (float(v) for v in image.boxes_xyxy[k])
    segment = image.segments[k]
    entry: dict[str, Any] = {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": int(image.labels[k]) + 1,
        "bbox": [round(x1, 4), round(y1, 4), round(x2 - x1, 4), round(y2 - y1, 4)],
        "area": round((x2 - x1) * (y2 - y1), 4),
        "iscrowd": int(image.iscrowd[k]),
    }
    if segment is None:
        result.boxes_only += 1
    else:
        entry["area"] = int(segment_to_mask(segment, image.height, image.width).sum())
        if isinstance(segment, Polygons):
            entry["segmentation"] = [
                [round(float(v), 4) for v in ring.ravel()] for ring in segment.rings
            ]
        else:
            entry["segmentation"] = dict(rle_to_coco(segment))
        result.segments += 1
    result.instances += 1
    return entry


def _write_masks(
    dataset: Dataset,
    out_dir: Path,
    targets: list[Path],
    mode: ImageTransfer,
    result: ConvertReport,
    progress: ProgressCallback | None,
) -> None:
    _require_semantic_form(dataset)
    masks = _companion_files(out_dir, targets, "masks", ".png", "mask")
    _refuse_existing([*targets, *masks, out_dir / "classes.txt"])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "classes.txt").write_text("\n".join(dataset.class_names) + "\n")
    for done, (image, target, mask) in enumerate(
        zip(dataset.images, targets, masks, strict=True), start=1
    ):
        _transfer(image.image_path, target, mode)
        mask.parent.mkdir(parents=True, exist_ok=True)
        save_index_png(mask, annotation_to_index_map(image))
        result.instances += image.num_instances
        result.segments += image.num_instances
        report(progress, ProgressEvent(CONVERT_TASK, completed=done, total=len(targets)))
    result.files_written = 2 * len(targets) + 1
    result.notes.append(
        "masks are palette PNGs: pixel value = class id (line in classes.txt), 255 = ignored"
    )


def _require_semantic_form(dataset: Dataset) -> None:
    """Index masks hold one class per pixel: refuse instance labels (they would overlap and lack
    the background class)."""
    for image in dataset.images:
        labels = image.labels.tolist()
        if len(set(labels)) != len(labels) or not all(isinstance(s, RLE) for s in image.segments):
            raise ConvertError(
                f"{image.image_path}: these are instance labels; index masks need the semantic "
                "form (one region per class, background = class 0). Rasterise them first with "
                "dfseg.data.semantic.semantic_from_instances (`dfseg convert --to masks` does)"
            )


_WRITERS = {"yolo": _write_yolo, "coco": _write_coco, "masks": _write_masks}
