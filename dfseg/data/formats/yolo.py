"""Reading YOLO txt labels: `class cx cy w h` boxes and `class x1 y1 x2 y2 ...` polygons.

Coordinates in the files are normalised to [0, 1] (x by the image width, y by its height); boxes
are centre/size (cxcywh). Both kinds may be mixed in one file. An empty file, or no file at all,
makes the image a background.

Layouts (the label of `.../images/<sub>/a.jpg` is `.../labels/<sub>/a.txt`, Ultralytics' rule of
replacing the last `images` folder by `labels`):
- `images/` + `labels/` (also nested, e.g. `images/train` + `labels/train`, or Roboflow's
  `train/images` + `train/labels`); when any `images` folder exists, images outside such folders
  are not used (reported).
- otherwise image and txt side by side (`a.jpg` + `a.txt`) anywhere under the root.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dfseg.data.formats.classes import CLASS_LIST_FILES, class_name_candidates, find_class_names
from dfseg.data.formats.images import list_images, probe_image
from dfseg.data.formats.instances import (
    InstanceBuffer,
    box_is_degenerate,
    classify_range,
    clip_box_xyxy,
    clip_points,
    coordinate_tolerance,
    negligible_excess,
    ring_is_degenerate,
)
from dfseg.data.formats.issues import DatasetError, IssueLog
from dfseg.data.formats.result import ReadResult, report_read_progress
from dfseg.ops.masks import polygons_to_box_xyxy
from dfseg.structures import Dataset, ImageAnnotation, Polygons
from dfseg.structures.progress import ProgressCallback

IMAGES_FOLDER = "images"
LABELS_FOLDER = "labels"
_NOT_LABEL_FILES = {Path(name).name for name in CLASS_LIST_FILES} | {
    "train.txt",
    "val.txt",
    "test.txt",
    "readme.txt",
}


def label_path_for(image_path: Path, root: Path) -> Path:
    """Where the YOLO label of `image_path` is expected (see the module docstring)."""
    parts = list(image_path.relative_to(root).parts)
    folders = parts[:-1]
    if IMAGES_FOLDER in folders:
        index = len(folders) - 1 - folders[::-1].index(IMAGES_FOLDER)
        parts[index] = LABELS_FOLDER
    return (root.joinpath(*parts)).with_suffix(".txt")


def _select_images(root: Path, log: IssueLog) -> list[Path]:
    images = list_images(root)
    in_images_folder = [p for p in images if IMAGES_FOLDER in p.relative_to(root).parts[:-1]]
    if not in_images_folder:
        return images
    selected = set(in_images_folder)
    outside = [p for p in images if p not in selected]
    if outside:
        examples = ", ".join(log.relative(p) for p in outside[:3])
        log.add(
            "unlisted-image",
            outside[0].parent,
            f"{len(outside)} image(s) outside `images/` folders are not used (e.g. {examples})",
            hint="With an images/ + labels/ layout only images under `images/` folders are read.",
        )
    return in_images_folder


def _resolve_class_names(root: Path, class_names: list[str] | None) -> list[str]:
    if class_names:
        return list(class_names)
    found = find_class_names(root)
    if found is None:
        looked = ", ".join(str(p) for p in class_name_candidates(root))
        raise DatasetError(
            f"No class names for the YOLO dataset at {root}: looked for {looked}. Set "
            "`data.classes` in the project file, or write classes.txt (one name per line, "
            "line 1 = class 0)."
        )
    return found[0]


def _no_labels_error(root: Path, images: list[Path]) -> DatasetError:
    example = images[0]
    expected = label_path_for(example, root)
    hint = ""
    if root.name == IMAGES_FOLDER and (root.parent / LABELS_FOLDER).is_dir():
        labels = root.parent / LABELS_FOLDER
        hint = f" The labels seem to be in {labels}: point data.path to {root.parent}."
    return DatasetError(
        f"No labels found: {len(images)} image(s) under {root} but no label file for any of "
        f"them. For {example.relative_to(root)} dfseg looked for "
        f"{expected.relative_to(root)}. YOLO labels go in a `labels/` folder mirroring "
        "`images/` (images/a.jpg -> labels/a.txt), or beside each image (a.jpg -> a.txt)." + hint
    )


def read_yolo(
    root: Path,
    class_names: list[str] | None,
    annotations: Path | None = None,
    progress: ProgressCallback | None = None,
) -> ReadResult:
    """Read a YOLO txt dataset in place.

    Args:
        root: dataset folder.
        class_names: id -> name; when None, read from classes.txt / data.yaml in the dataset.
        annotations: unused (YOLO has one file per image); accepted for a uniform signature.
        progress: optional callback, one event every few images.

    Returns:
        The dataset (absolute pixel xyxy boxes, polygons in pixels) and what was left out.

    Raises:
        DatasetError: no images, no label files at all, or no class names.
    """
    del annotations
    if not root.is_dir():
        raise DatasetError(f"YOLO dataset folder {root} does not exist or is not a folder")
    names = _resolve_class_names(root, class_names)
    log = IssueLog(root)
    images = _select_images(root, log)
    if not images:
        raise DatasetError(
            f"No images found under {root} (looked recursively for .jpg, .jpeg, .png, .bmp, "
            ".tif, .tiff, .webp)"
        )
    label_paths = [label_path_for(p, root) for p in images]
    _report_shared_labels(images, label_paths, log)
    existing = [p.is_file() for p in label_paths]
    if not any(existing):
        raise _no_labels_error(root, images)
    result = ReadResult(dataset=Dataset(root, "yolo", names, []))
    for done, (image_path, label_path, has_label) in enumerate(
        zip(images, label_paths, existing, strict=True), start=1
    ):
        annotation = _read_one(image_path, label_path if has_label else None, names, log)
        if annotation is None:
            result.excluded_images.append(image_path)
        else:
            result.dataset.images.append(annotation)
        result.label_files += int(has_label)
        report_read_progress(progress, done, len(images))
    _report_orphan_labels(set(label_paths), log)
    result.dataset.issues = log.issues
    return result


def _read_one(
    image_path: Path, label_path: Path | None, names: list[str], log: IssueLog
) -> ImageAnnotation | None:
    header = probe_image(image_path, log)
    if header is None:
        return None
    if label_path is None:
        expected = log.relative(label_path_for(image_path, log.root))
        log.add("missing-label", image_path, f"no label file ({expected}); used as a background")
        return ImageAnnotation(image_path=image_path, width=header.width, height=header.height)
    buffer = parse_label_file(label_path, header.width, header.height, len(names), log)
    return buffer.to_annotation(image_path, header.width, header.height, label_path)


@dataclass(frozen=True)
class _LabelFile:
    """One label file being parsed, with what its rows are checked against."""

    path: Path
    width: int
    height: int
    num_classes: int
    log: IssueLog


def parse_label_file(
    path: Path, width: int, height: int, num_classes: int, log: IssueLog
) -> InstanceBuffer:
    """Parse every row of one label file, logging each problem with its line number.

    All rows are checked even after an error, so one run reports every problem in the file; a
    row with an error is dropped (and counted in `dropped`), the others are kept.

    Args:
        path: the txt file.
        width, height: image size in pixels (normalised values are scaled by it).
        num_classes: valid class ids are 0..num_classes - 1.
        log: where problems go.

    Returns:
        The instances (xyxy boxes and polygons in absolute pixels) of the valid rows.
    """
    context = _LabelFile(path, width, height, num_classes, log)
    buffer = InstanceBuffer()
    seen_rows: set[tuple[float, ...]] = set()
    for line_number, text in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        tokens = text.split()
        if not tokens:
            continue
        try:
            values = np.array([float(token) for token in tokens], dtype=np.float64)
        except ValueError:
            log.add("bad-number", path, f"not a number in row {text.strip()[:60]!r}", line_number)
            buffer.dropped += 1
            continue
        key = tuple(values.tolist())
        if key in seen_rows:
            log.add("duplicate-row", path, "duplicate row dropped", line_number)
            continue
        seen_rows.add(key)
        if not _parse_row(values, line_number, context, buffer):
            buffer.dropped += 1
    return buffer


def _row_shape_problem(values: np.ndarray) -> tuple[str, str] | None:
    coordinates = len(values) - 1
    if not np.isfinite(values).all():
        return "bad-number", "row contains nan or inf"
    if coordinates == 4 or (coordinates >= 6 and coordinates % 2 == 0):
        return None
    if coordinates % 2 == 1 and coordinates >= 5:
        return "odd-coordinates", f"{coordinates} coordinates after the class id (odd count)"
    return "wrong-column-count", f"{len(values)} values in the row"


def _parse_row(values: np.ndarray, line: int, file: _LabelFile, buffer: InstanceBuffer) -> bool:
    """Add the row's instance to `buffer` (or drop it with a warning); False on an error."""
    path, log, num_classes = file.path, file.log, file.num_classes
    problem = _row_shape_problem(values)
    if problem is not None:
        log.add(problem[0], path, problem[1], line)
        return False
    class_value = values[0]
    if not class_value.is_integer() or not 0 <= class_value < num_classes:
        log.add(
            "unknown-class",
            path,
            f"class id {class_value:g} is not in 0..{num_classes - 1} ({num_classes} classes)",
            line,
        )
        return False
    coordinates = values[1:]
    verdict = classify_range(
        coordinates, coordinate_tolerance(file.width, file.height), allow_pixel_guess=True,
        negligible=negligible_excess(file.width, file.height),
    )  # fmt: skip
    if verdict in ("not-normalised", "out-of-range"):
        message = (
            f"coordinates up to {coordinates.max():g} look like pixels, not normalised"
            if verdict == "not-normalised"
            else f"coordinates in [{coordinates.min():g}, {coordinates.max():g}], outside [0, 1]"
        )
        log.add(verdict, path, message, line)
        return False
    if verdict == "clip":
        log.add(
            "clipped",
            path,
            f"coordinates in [{coordinates.min():g}, {coordinates.max():g}] clipped to [0, 1]",
            line,
        )
    _add_instance(int(class_value), coordinates, line, file, buffer)
    return True


def _add_instance(
    class_id: int, coordinates: np.ndarray, line: int, file: _LabelFile, buffer: InstanceBuffer
) -> None:
    """Normalised cxcywh box (4 values) or polygon -> pixels; zero-area shapes are dropped."""
    width, height = file.width, file.height
    scale = np.array([width, height], dtype=np.float64)
    if len(coordinates) == 4:
        centre, size = coordinates[:2] * scale, coordinates[2:] * scale
        box = clip_box_xyxy(np.concatenate([centre - size / 2, centre + size / 2]), width, height)
        if box_is_degenerate(box) or (size <= 0).any():
            file.log.add("degenerate", file.path, "box with zero width or height dropped", line)
            return
        buffer.add(class_id, box)
        return
    ring = clip_points(coordinates.reshape(-1, 2) * scale, width, height)  # [K, 2] pixels
    if ring_is_degenerate(ring):
        file.log.add("degenerate", file.path, "polygon with zero area dropped", line)
        return
    buffer.add(class_id, polygons_to_box_xyxy([ring]), Polygons(rings=(ring,)))


def _report_shared_labels(images: list[Path], label_paths: list[Path], log: IssueLog) -> None:
    owners: dict[Path, list[Path]] = {}
    for image, label in zip(images, label_paths, strict=True):
        owners.setdefault(label, []).append(image)
    for label, sharing in owners.items():
        if len(sharing) > 1 and label.is_file():
            names = ", ".join(p.name for p in sharing)
            log.add("shared-label", label, f"label file of {len(sharing)} images ({names})")


def _report_orphan_labels(expected_labels: set[Path], log: IssueLog) -> None:
    folders = {p.parent for p in expected_labels}
    for folder in sorted(folders):
        if not folder.is_dir():
            continue
        for txt in sorted(folder.glob("*.txt")):
            if txt in expected_labels or txt.name.lower() in _NOT_LABEL_FILES:
                continue
            log.add("label-without-image", txt, "label file without a matching image")
