"""Reading semantic segmentation masks: one index PNG per image, pixel value = class id.

Layouts (the mask of an image is found by replacing its last `images` folder by `masks`, or
`annotations` as in ADE20K, and its last `JPEGImages` folder by `SegmentationClass` as in Pascal
VOC; the mask has the image's stem and the suffix `.png`):
- `images/**` + `masks/**`, also with splits inside (`images/train` + `masks/train`) or outside
  (`train/images` + `train/masks`);
- VOC `JPEGImages/` + `SegmentationClass/`. VOC's JPEGImages also holds the detection-only
  images, so images there without a mask are unused (one info) rather than errors.
Images outside these folders are not used (reported).

Mask pixels are class ids (index in the class list) or 255 for pixels to ignore (VOC's object
borders). Decoding: palette PNGs (mode P) give their palette indices (VOC), greyscale (L, I;16,
I) their values, 1-bit masks 0/1; RGB(A) masks are mapped through the VOC colour palette when
every colour is a VOC colour ((224, 224, 192) = 255), else read as greyscale when the three
channels agree, else rejected.

Class names: given, or `classes.txt` at the root (one name per line, line index = pixel value).
Each image becomes one pseudo-instance per class present (`dfseg.data.semantic`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from dfseg.data.formats.classes import read_class_list
from dfseg.data.formats.images import list_images, probe_image
from dfseg.data.formats.issues import DatasetError, IssueLog
from dfseg.data.formats.result import ReadResult, report_read_progress
from dfseg.data.semantic import (
    IGNORE_INDEX,
    MAX_SEMANTIC_CLASSES,
    class_values,
    index_map_to_annotation,
    voc_palette,
)
from dfseg.structures import Dataset, ImageAnnotation
from dfseg.structures.progress import ProgressCallback

# image folder name -> mask folder names, tried in order (the first that exists is used)
MASK_FOLDERS: dict[str, tuple[str, ...]] = {
    "images": ("masks", "annotations"),
    "JPEGImages": ("SegmentationClass",),
}
# Image folders that also hold images without masks (VOC detection images): those are unused.
_MASKS_OPTIONAL = frozenset({"JPEGImages"})
# Folders never searched for images (masks are PNGs too).
_NOT_IMAGE_FOLDERS = frozenset(
    {name for names in MASK_FOLDERS.values() for name in names} | {"SegmentationObject"}
)
CLASSES_FILE = "classes.txt"
_LISTED_VALUES = 10


class _MaskProblem(Exception):
    """Why one mask file is unusable: an `ISSUE_KINDS` code and a message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class _MaskedImage:
    """One image and where its mask is expected."""

    image: Path
    mask: Path
    optional: bool  # in a VOC JPEGImages folder: no mask means unused, not an error


def _mask_for(image_path: Path, root: Path) -> _MaskedImage | None:
    """Where the mask of `image_path` is expected (module docstring), None outside image
    folders."""
    parts = list(image_path.relative_to(root).parts)
    folders = parts[:-1]
    indices = [i for i, name in enumerate(folders) if name in MASK_FOLDERS]
    if not indices:
        return None
    index = indices[-1]
    candidates = MASK_FOLDERS[folders[index]]
    chosen = next(
        (name for name in candidates if root.joinpath(*parts[:index], name).is_dir()),
        candidates[0],
    )
    mask_parts = [*parts[:index], chosen, *parts[index + 1 :]]
    mask = root.joinpath(*mask_parts).with_suffix(".png")
    return _MaskedImage(image_path, mask, folders[index] in _MASKS_OPTIONAL)


def _select_images(root: Path, log: IssueLog) -> list[_MaskedImage]:
    images = [
        p for p in list_images(root) if not _NOT_IMAGE_FOLDERS & set(p.relative_to(root).parts)
    ]
    selected = [found for p in images if (found := _mask_for(p, root)) is not None]
    outside = len(images) - len(selected)
    if selected and outside:
        used = {item.image for item in selected}
        unused = [p for p in images if p not in used]
        examples = ", ".join(log.relative(p) for p in unused[:3])
        log.add(
            "unlisted-image",
            root,
            f"{outside} image(s) outside images/ or JPEGImages/ folders are not used "
            f"(e.g. {examples})",
            hint="A masks dataset reads images under `images/` (masks in `masks/`) or "
            "`JPEGImages/` (masks in `SegmentationClass/`) folders only.",
        )
    return selected


def _resolve_class_names(root: Path, class_names: list[str] | None) -> list[str]:
    names = list(class_names) if class_names else None
    if names is None and (root / CLASSES_FILE).is_file():
        names = read_class_list(root / CLASSES_FILE)
    if names is None:
        raise DatasetError(
            f"No class names for the masks dataset at {root} (no {CLASSES_FILE} there). List "
            "the class names in data.classes of the project file in pixel-value order (the "
            "name at index i is the class of mask value i; background usually first), or "
            f"write {root / CLASSES_FILE} with one name per line."
        )
    if len(names) > MAX_SEMANTIC_CLASSES:
        raise DatasetError(
            f"{len(names)} classes for the masks dataset at {root}: index masks hold at most "
            f"{MAX_SEMANTIC_CLASSES} (value {IGNORE_INDEX} marks ignored pixels)"
        )
    return names


def _layout_error(root: Path, found_images: bool) -> DatasetError:
    layouts = (
        "images/ + masks/ (also train/images + train/masks), or JPEGImages/ + SegmentationClass/"
    )
    if not found_images:
        return DatasetError(
            f"No images found under {root} (looked recursively for .jpg, .jpeg, .png, .bmp, "
            f".tif, .tiff, .webp). A masks dataset has {layouts}."
        )
    hint = ""
    if root.name in MASK_FOLDERS or root.name in _NOT_IMAGE_FOLDERS:
        hint = f" data.path points into the dataset: point it to {root.parent}."
    return DatasetError(
        f"No images in an images/ or JPEGImages/ folder under {root}: a masks dataset has "
        f"{layouts}.{hint}"
    )


def _no_masks_error(root: Path, items: list[_MaskedImage]) -> DatasetError:
    example = items[0]
    return DatasetError(
        f"No masks found: {len(items)} image(s) under {root} but no mask for any of them. For "
        f"{example.image.relative_to(root)} dfseg looked for {example.mask.relative_to(root)}. "
        "Masks are PNGs with the image's name in a folder beside the image folder: "
        "images/a.jpg -> masks/a.png, JPEGImages/a.jpg -> SegmentationClass/a.png."
    )


def read_masks(
    root: Path,
    class_names: list[str] | None,
    annotations: Path | None = None,
    progress: ProgressCallback | None = None,
) -> ReadResult:
    """Read a dataset of index-mask PNGs in place (layouts and decoding: module docstring).

    Args:
        root: dataset folder.
        class_names: id -> name, the id being the mask pixel value; when None, read from
            classes.txt at the root.
        annotations: unused (one mask per image); accepted for a uniform signature.
        progress: optional callback, one event every few images.

    Returns:
        The dataset (format "masks"): per image one pseudo-instance per class present (label =
        class id, RLE of its pixels, tight xyxy box in absolute pixels), and what was left out.

    Raises:
        DatasetError: no images, no masks at all, or no class names.
    """
    del annotations
    if not root.is_dir():
        raise DatasetError(f"Masks dataset folder {root} does not exist or is not a folder")
    names = _resolve_class_names(root, class_names)
    log = IssueLog(root)
    items = _select_images(root, log)
    if not items:
        raise _layout_error(root, found_images=bool(list_images(root)))
    existing = [item.mask.is_file() for item in items]
    if not any(existing):
        raise _no_masks_error(root, items)
    _report_shared_masks(items, log)
    result = ReadResult(dataset=Dataset(root, "masks", names, []))
    unused: list[Path] = []
    for done, (item, has_mask) in enumerate(zip(items, existing, strict=True), start=1):
        if has_mask:
            annotation = _read_one(item, len(names), log)
            result.label_files += 1
            if annotation is None:
                result.excluded_images.append(item.image)
            else:
                result.dataset.images.append(annotation)
        elif item.optional:
            unused.append(item.image)
        else:
            expected = log.relative(item.mask)
            log.add("missing-mask", item.image, f"no mask ({expected}); the image is left out")
            result.excluded_images.append(item.image)
        report_read_progress(progress, done, len(items))
    _report_unused(unused, log)
    _report_orphan_masks({item.mask for item in items}, log)
    result.dataset.images.sort(key=lambda image: str(image.image_path))
    result.dataset.issues = log.issues
    return result


def _read_one(item: _MaskedImage, num_classes: int, log: IssueLog) -> ImageAnnotation | None:
    header = probe_image(item.image, log)
    if header is None:
        return None
    try:
        index_map = _read_index_mask(item.mask)
        _check_size(index_map, (header.width, header.height), log.relative(item.image))
        _check_values(index_map, num_classes)
    except _MaskProblem as problem:
        log.add(problem.code, item.mask, problem.message)
        return None
    return index_map_to_annotation(item.image, index_map.astype(np.uint8), item.mask)


def _check_size(index_map: np.ndarray, image_size: tuple[int, int], image: str) -> None:
    height, width = index_map.shape
    if (width, height) != image_size:
        raise _MaskProblem(
            "mask-size",
            f"the mask is {width}x{height} pixels but its image {image} is "
            f"{image_size[0]}x{image_size[1]} (width x height); the image is left out",
        )


def _check_values(index_map: np.ndarray, num_classes: int) -> None:
    present = class_values(index_map)
    bad = [int(v) for v in present if not (0 <= v < num_classes or v == IGNORE_INDEX)]
    if bad:
        more = f" and {len(bad) - _LISTED_VALUES} more" if len(bad) > _LISTED_VALUES else ""
        raise _MaskProblem(
            "mask-values",
            f"mask values {bad[:_LISTED_VALUES]}{more} are neither class ids 0..{num_classes - 1} "
            f"({num_classes} classes) nor {IGNORE_INDEX} (ignore); the image is left out",
        )


def _read_index_mask(path: Path) -> np.ndarray:
    """Decode one mask file to its class values (rules: module docstring).

    Returns:
        [H, W] integer array (uint8, or wider for 16/32-bit masks).

    Raises:
        _MaskProblem: the file is unreadable, of an unsupported mode, or a colour mask that is
            not in the VOC palette.
    """
    try:
        with Image.open(path) as image:
            decode = _MODE_DECODERS.get(image.mode)
            if decode is None:
                raise _MaskProblem(
                    "unreadable-mask", f"mask mode {image.mode} is not an index mask"
                )
            return decode(image)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        raise _MaskProblem("unreadable-mask", f"cannot read the mask: {error}") from error


def _values(image: Image.Image) -> np.ndarray:
    return np.asarray(image)


def _binary(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(np.uint8)


def _first_channel(image: Image.Image) -> np.ndarray:
    return np.asarray(image.getchannel(0))


def _colours(image: Image.Image) -> np.ndarray:
    """RGB(A) -> VOC palette index per pixel; greyscale saved as RGB -> the grey value."""
    rgb = np.asarray(image.convert("RGB"))  # [H, W, 3]
    keys = _colour_keys(rgb.reshape(-1, 3))  # [H * W]
    colours, inverse = np.unique(keys, return_inverse=True)
    palette_index = {int(key): index for index, key in enumerate(_colour_keys(voc_palette()))}
    indices = [palette_index.get(int(key)) for key in colours]
    if all(index is not None for index in indices):
        return np.asarray(indices, dtype=np.uint8)[inverse.ravel()].reshape(rgb.shape[:2])
    if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all():
        return np.ascontiguousarray(rgb[..., 0])
    unknown = [int(key) for key, index in zip(colours, indices, strict=True) if index is None]
    examples = ", ".join(str((k >> 16, (k >> 8) & 255, k & 255)) for k in unknown[:5])
    raise _MaskProblem(
        "colour-mask",
        f"colour mask ({image.mode}) with {len(unknown)} colour(s) that are not Pascal VOC "
        f"palette colours (e.g. {examples}); the image is left out",
    )


def _colour_keys(rgb: np.ndarray) -> np.ndarray:
    """[N, 3] uint8 -> [N] uint32 0xRRGGBB."""
    channels = rgb.astype(np.uint32)
    return (channels[:, 0] << 16) | (channels[:, 1] << 8) | channels[:, 2]


_MODE_DECODERS: dict[str, Callable[[Image.Image], np.ndarray]] = {
    "P": _values,  # palette indices are the class ids (VOC)
    "L": _values,
    "I;16": _values,
    "I;16L": _values,
    "I;16B": _values,
    "I": _values,
    "1": _binary,
    "LA": _first_channel,
    "PA": _first_channel,
    "RGB": _colours,
    "RGBA": _colours,
}


def _report_shared_masks(items: list[_MaskedImage], log: IssueLog) -> None:
    owners: dict[Path, list[Path]] = {}
    for item in items:
        owners.setdefault(item.mask, []).append(item.image)
    for mask, sharing in owners.items():
        if len(sharing) > 1 and mask.is_file():
            names = ", ".join(p.name for p in sharing)
            log.add("shared-label", mask, f"mask of {len(sharing)} images ({names})")


def _report_unused(unused: list[Path], log: IssueLog) -> None:
    if unused:
        log.add(
            "unlisted-image",
            unused[0].parent,
            f"{len(unused)} image(s) in JPEGImages/ have no mask in SegmentationClass/ and are "
            f"not used (e.g. {log.relative(unused[0])})",
            hint="VOC keeps its detection-only images in JPEGImages/ too; only images with a "
            "mask are read.",
        )


def _report_orphan_masks(expected_masks: set[Path], log: IssueLog) -> None:
    for folder in sorted({mask.parent for mask in expected_masks}):
        if not folder.is_dir():
            continue
        for mask in sorted(folder.glob("*.png")):
            if mask not in expected_masks:
                log.add("label-without-image", mask, "mask without a matching image")
