"""Semantic labels (a class per pixel) in the internal annotation form.

A semantic label is an index map: [H, W] integers, pixel value = class id, `IGNORE_INDEX` (255)
for pixels without a label (VOC's object borders, crowd regions). It is held as one
pseudo-instance per class present in the image: label = the class id, segment = a COCO `RLE` of
that class's pixels at the image's size, box = the tight xyxy bounds of those pixels in absolute
pixels with pixel edges (x2 = last column + 1, as `dfseg.ops.masks.masks_to_boxes_xyxy`).
Ignored pixels belong to no pseudo-instance. Everything written for instances (checks,
stratified splits, augmentation warping RLE masks, mosaic) then works unchanged, and the training
target is the index map rebuilt from the (warped) class regions.

Index PNGs are written with the Pascal VOC colour palette (`voc_palette`), as VOC's own
SegmentationClass masks are, so the pixel values stay the class ids while viewers show colours.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from dfseg.data.formats.issues import DatasetError, IssueLog, indented_list
from dfseg.errors import DfsegError
from dfseg.ops.masks import (
    mask_to_rle,
    polygon_area,
    polygon_to_mask,
    rle_area,
    rle_to_box_xyxy,
    segment_to_mask,
)
from dfseg.structures import RLE, Dataset, ImageAnnotation, Polygons, Segment

# The label value of unlabelled pixels. Equal to `dfseg.ops.semantic.IGNORE_INDEX`, which lives
# beside torch code: reading labels must not import torch.
IGNORE_INDEX = 255
# Class ids must fit in a uint8 index map below the ignore value.
MAX_SEMANTIC_CLASSES = IGNORE_INDEX


class MaskWriteError(DfsegError, FileExistsError):
    """Index masks would overwrite a file (existing, or another image's); nothing is written."""


@lru_cache(maxsize=1)
def _voc_palette() -> np.ndarray:
    palette = np.zeros((256, 3), dtype=np.uint8)
    for index in range(256):
        value, red, green, blue = index, 0, 0, 0
        for bit in range(8):  # the VOC devkit's bit-interleaving colour map
            red |= ((value >> 0) & 1) << (7 - bit)
            green |= ((value >> 1) & 1) << (7 - bit)
            blue |= ((value >> 2) & 1) << (7 - bit)
            value >>= 3
        palette[index] = (red, green, blue)
    palette.flags.writeable = False
    return palette


def voc_palette() -> np.ndarray:
    """The Pascal VOC colour of each index value.

    Returns:
        [256, 3] uint8 RGB: 0 black (background), 1 (128, 0, 0), 2 (0, 128, 0), ...,
        255 (224, 224, 192), the colour of VOC's ignored object borders.
    """
    return _voc_palette().copy()


def class_values(index_map: np.ndarray) -> np.ndarray:
    """The distinct values of an index map, sorted: [K] int64 (a bincount for 8/16-bit maps)."""
    values = np.asarray(index_map)
    if values.dtype in (np.uint8, np.uint16) and values.size:
        return np.flatnonzero(np.bincount(values.ravel())).astype(np.int64)
    return np.unique(values).astype(np.int64)


def index_map_to_annotation(
    image_path: Path,
    index_map: np.ndarray,
    label_path: Path | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> ImageAnnotation:
    """The pseudo-instances of one image's index map (see the module docstring).

    Args:
        image_path: the image the map labels.
        index_map: [H, W] integer class id per pixel; `ignore_index` for unlabelled pixels.
        label_path: the mask file it came from (None when rasterised from instances).
        ignore_index: the value of unlabelled pixels (no pseudo-instance).

    Returns:
        One instance per class present, in increasing class order: labels [K] int64, boxes
        [K, 4] float32 absolute pixel xyxy (pixel edges), segments K compressed `RLE` of
        size (H, W).

    Raises:
        ValueError: the map is not 2-D integers, or holds negative values.
    """
    values = np.asarray(index_map)
    if values.ndim != 2 or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"index map must be [H, W] integers, got {values.dtype} {values.shape}")
    height, width = values.shape
    classes = [int(v) for v in class_values(values) if v != ignore_index]
    if classes and classes[0] < 0:
        raise ValueError(f"{image_path}: index map holds negative class ids {classes[:10]}")
    boxes = np.zeros((len(classes), 4), dtype=np.float32)
    segments: list[Segment | None] = []
    for row, class_id in enumerate(classes):
        encoded = mask_to_rle(values == class_id)
        segments.append(RLE(counts=encoded["counts"], height=height, width=width))
        boxes[row] = rle_to_box_xyxy(encoded)
    return ImageAnnotation(
        image_path=image_path,
        width=width,
        height=height,
        labels=np.array(classes, dtype=np.int64),
        boxes_xyxy=boxes,
        segments=segments,
        label_path=label_path,
    )


def _region_mask(
    segment: Segment | None, box_xyxy: np.ndarray, height: int, width: int
) -> np.ndarray:
    """[H, W] uint8 {0, 1} of one instance at the image's size (box-only: its box)."""
    if segment is None:
        x1, y1, x2, y2 = np.asarray(box_xyxy, dtype=np.float64)
        ring = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])
        return polygon_to_mask([ring], height, width)
    return segment_to_mask(segment, height, width)


def annotation_to_index_map(
    annotation: ImageAnnotation, ignore_index: int = IGNORE_INDEX
) -> np.ndarray:
    """Decode an image's class regions back into its index map (inverse of
    `index_map_to_annotation`).

    Args:
        annotation: pseudo-instances (any segments are accepted; box-only ones paint their box,
            crowd ones `ignore_index`); where regions overlap the later one wins.
        ignore_index: the value of pixels no region covers.

    Returns:
        [H, W] uint8 class id per pixel.

    Raises:
        ValueError: a label that does not fit in uint8.
    """
    height, width = annotation.height, annotation.width
    index_map = np.full((height, width), ignore_index, dtype=np.uint8)
    if annotation.num_instances and int(annotation.labels.max()) > 255:
        raise ValueError(f"{annotation.image_path}: class ids above 255 do not fit an index map")
    regions = zip(
        annotation.labels, annotation.segments, annotation.boxes_xyxy, annotation.iscrowd,
        strict=True,
    )  # fmt: skip
    for label, segment, box, crowd in regions:
        inside = _region_mask(segment, box, height, width).astype(bool)
        index_map[inside] = ignore_index if crowd else int(label)
    return index_map


def _instance_area(segment: Segment | None, box_xyxy: np.ndarray) -> float:
    """Approximate pixel area, only to paint large instances first."""
    if segment is None:
        x1, y1, x2, y2 = np.asarray(box_xyxy, dtype=np.float64)
        return max(x2 - x1, 0.0) * max(y2 - y1, 0.0)
    if isinstance(segment, Polygons):
        return sum(polygon_area(ring) for ring in segment.rings)
    return float(rle_area(segment))


def _paint_instances(image: ImageAnnotation, offset: int) -> np.ndarray:
    """[H, W] uint8: 0 background, instances label + offset, larger ones painted first so small
    objects stay on top; crowd regions `IGNORE_INDEX`."""
    index_map = np.zeros((image.height, image.width), dtype=np.uint8)
    areas = [_instance_area(s, b) for s, b in zip(image.segments, image.boxes_xyxy, strict=True)]
    for row in np.argsort(-np.asarray(areas, dtype=np.float64), kind="stable"):
        mask = _region_mask(image.segments[row], image.boxes_xyxy[row], image.height, image.width)
        value = IGNORE_INDEX if image.iscrowd[row] else int(image.labels[row]) + offset
        index_map[mask.astype(bool)] = value
    return index_map


def _semantic_class_names(dataset: Dataset, background: str) -> tuple[list[str], int]:
    """(class names with the background first, the shift of the instance class ids)."""
    names = list(dataset.class_names)
    folded = [name.casefold() for name in names]
    shift = 0 if folded[:1] == [background.casefold()] else 1
    if shift and background.casefold() in folded:
        index = folded.index(background.casefold())
        raise DatasetError(
            f"{dataset.root}: class {names[index]!r} has id {index}, but semantic labels need "
            f"{background!r} (the unlabelled pixels) as class 0; put it first in data.classes, "
            "or rename the class"
        )
    if len(names) + shift > MAX_SEMANTIC_CLASSES:
        raise DatasetError(
            f"{dataset.root}: {len(names) + shift} classes with the background; semantic labels "
            f"hold at most {MAX_SEMANTIC_CLASSES} (value {IGNORE_INDEX} marks ignored pixels)"
        )
    return ([background, *names] if shift else names), shift


def semantic_from_instances(dataset: Dataset, background: str = "background") -> Dataset:
    """Turn an instance dataset (polygons, RLE masks, boxes) into class regions.

    Each image is rasterised at its own size: `background` (class 0) everywhere, each instance
    painted with its class id + 1 in order of decreasing area (small objects on top of large
    ones), crowd regions painted `IGNORE_INDEX`, box-only instances painted as their box (counted
    in a "box-only-regions" info). When class 0 is already named `background` (any case), the
    class ids are kept as they are. One image is rasterised at a time and encoded to RLE at
    once, so memory does not grow with the dataset.

    Args:
        dataset: instance labels (every image is kept, in order).
        background: the name of class 0, the pixels no instance covers.

    Returns:
        The dataset in the semantic form (see the module docstring), with the input's issues
        plus the box-only info; `source_class_ids` is dropped (the ids changed).

    Raises:
        DatasetError: a class other than class 0 is named `background`, or more than
            `MAX_SEMANTIC_CLASSES` classes with the background.
    """
    names, shift = _semantic_class_names(dataset, background)
    images: list[ImageAnnotation] = []
    box_only = 0
    for image in dataset.images:
        box_only += sum(segment is None for segment in image.segments)
        index_map = _paint_instances(image, shift)
        images.append(index_map_to_annotation(image.image_path, index_map, image.label_path))
    log = IssueLog(dataset.root)
    if box_only:
        message = f"{box_only} box-only instance(s) rasterised as their boxes"
        log.add("box-only-regions", dataset.root, message)
    return Dataset(dataset.root, dataset.format, names, images, [*dataset.issues, *log.issues])


def class_pixel_counts(dataset: Dataset) -> np.ndarray:
    """Labelled pixels per class over a dataset in the semantic form, from the RLE areas (no
    decoding to dense masks).

    Returns:
        [C] int64 pixel count of each class (ignored pixels are in none).

    Raises:
        ValueError: an instance whose segment is not an `RLE` (not the semantic form).
    """
    counts = np.zeros(dataset.num_classes, dtype=np.int64)
    for image in dataset.images:
        for label, segment in zip(image.labels, image.segments, strict=True):
            if not isinstance(segment, RLE):
                raise ValueError(
                    f"{image.image_path}: class regions must be RLE masks, got "
                    f"{type(segment).__name__}; convert with semantic_from_instances first"
                )
            counts[int(label)] += rle_area(segment)
    return counts


def _refuse_overwrites(images: list[ImageAnnotation], targets: list[Path], out_dir: Path) -> None:
    owners: dict[Path, list[Path]] = {}
    for image, target in zip(images, targets, strict=True):
        owners.setdefault(target, []).append(image.image_path)
    shared = [
        f"{target.name}: {', '.join(map(str, paths))}"
        for target, paths in owners.items()
        if len(paths) > 1
    ]
    if shared:
        raise MaskWriteError(
            f"Index masks are named after the image stems, and these images would write the "
            f"same file in {out_dir}:\n{indented_list(shared)}\nRename the images so each stem "
            "is unique."
        )
    existing = [str(target) for target in targets if target.exists()]
    if existing:
        raise MaskWriteError(
            f"{len(existing)} mask file(s) already exist in {out_dir}; nothing was written:\n"
            f"{indented_list(existing)}\nChoose an empty output folder, or delete the files."
        )


def write_index_masks(dataset: Dataset, out_dir: Path, palette: bool = True) -> list[Path]:
    """Write each image's index map as `<out_dir>/<image stem>.png`.

    Nothing is written when any target exists (or two images share a stem).

    Args:
        dataset: the semantic form (see the module docstring).
        out_dir: the folder for the masks (created when missing).
        palette: write palette PNGs with the VOC colours (`voc_palette`; the pixel values are
            still the class ids), else 8-bit greyscale ("L").

    Returns:
        The written files, in the dataset's image order.

    Raises:
        MaskWriteError: a file would be overwritten.
    """
    targets = [out_dir / f"{image.image_path.stem}.png" for image in dataset.images]
    _refuse_overwrites(dataset.images, targets, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for image, target in zip(dataset.images, targets, strict=True):
        save_index_png(target, annotation_to_index_map(image), palette)
    return targets


def save_index_png(path: Path, index_map: np.ndarray, palette: bool = True) -> None:
    """[H, W] class ids as a PNG: with the VOC colours (mode "P", the pixel values unchanged), or
    8-bit greyscale ("L")."""
    png = Image.fromarray(np.ascontiguousarray(index_map, dtype=np.uint8))  # mode "L"
    if palette:
        png.putpalette(_voc_palette().tobytes())  # "L" -> "P", same values
    png.save(path)
