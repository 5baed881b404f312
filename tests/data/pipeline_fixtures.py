"""Synthetic images for the training-pipeline tests: every instance painted in its own colour.

Images are PNG (lossless), so after geometric augmentations the pixels of an instance can still
be recognised by colour: that is how the tests check that a kept instance's mask sits on its
pixels and that no instance still clearly visible was dropped.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dfseg.config.train import AugmentConfig
from dfseg.ops.masks import mask_to_rle, masks_to_boxes_xyxy, polygon_to_mask, polygons_to_box_xyxy
from dfseg.structures import RLE, ImageAnnotation, Polygons, Segment

_LEVELS = (0, 80, 160, 230)
# Every colour has its brightest channel at 230 and a different hue: an edge pixel blended with
# the black background or the grey padding (a darker or greyer version of one colour) can then
# never pass for another colour. Never grey (the padding is grey 114).
PALETTE = [
    np.array(rgb, np.uint8)
    for rgb in itertools.product(_LEVELS, repeat=3)
    if max(rgb) == 230 and len(set(rgb)) > 1
]
COLOUR_TOLERANCE = 12


@dataclass
class SyntheticSet:
    """Annotations plus the colour of every instance, keyed by (image index, instance index)."""

    annotations: list[ImageAnnotation]
    colours: dict[tuple[int, int], np.ndarray]


def star_ring(centre: tuple[float, float], radius: float, rng: np.random.Generator) -> np.ndarray:
    """[K, 2] float32 star-ish polygon around `centre`."""
    count = int(rng.integers(5, 12))
    angles = np.sort(rng.uniform(0, 2 * np.pi, count))
    radii = radius * rng.uniform(0.55, 1.0, count)
    ring = np.stack([centre[0] + radii * np.cos(angles), centre[1] + radii * np.sin(angles)], 1)
    return ring.astype(np.float32)


def _instance_segment(
    ring: np.ndarray, kind: str, height: int, width: int
) -> tuple[Segment | None, np.ndarray]:
    """(segment, mask) of a ring as the requested kind: polygon, rle or box (box-only)."""
    mask = polygon_to_mask([ring], height, width)
    if kind == "rle":
        coco = mask_to_rle(mask)
        counts = coco["counts"]
        return RLE(counts.decode() if isinstance(counts, bytes) else counts, height, width), mask
    if kind == "box":
        x1, y1, x2, y2 = polygons_to_box_xyxy([ring])
        box_ring = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32)
        return None, polygon_to_mask([box_ring], height, width)
    return Polygons((ring,)), mask


def make_synthetic_set(
    root: Path,
    sizes: list[tuple[int, int]],
    seed: int = 0,
    kinds: tuple[str, ...] = ("polygon",),
    num_classes: int = 3,
    backgrounds: int = 0,
) -> SyntheticSet:
    """Write PNG images with 1-4 non-overlapping coloured instances (one per grid cell).

    Args:
        root: folder for the images.
        sizes: (height, width) of each labelled image.
        seed: randomness of shapes, positions and labels.
        kinds: segment kinds to cycle through: "polygon", "rle", "box" (box-only instance).
        num_classes: labels are drawn from range(num_classes).
        backgrounds: extra images without instances, appended at the end.
    """
    rng = np.random.default_rng(seed)
    annotations: list[ImageAnnotation] = []
    colours: dict[tuple[int, int], np.ndarray] = {}
    palette = iter(rng.permutation(len(PALETTE)).tolist() * 4)
    for image_index, (height, width) in enumerate(sizes):
        image = np.zeros((height, width, 3), np.uint8)
        cells = rng.permutation(4)[: int(rng.integers(1, 5))]
        segments: list[Segment | None] = []
        boxes = []
        for instance_index, cell in enumerate(cells):
            cell_w, cell_h = width / 2, height / 2
            radius = min(cell_w, cell_h) * rng.uniform(0.2, 0.45)
            centre = (
                (cell % 2) * cell_w + rng.uniform(radius, cell_w - radius),
                (cell // 2) * cell_h + rng.uniform(radius, cell_h - radius),
            )
            ring = star_ring(centre, radius, rng)
            kind = kinds[(image_index + instance_index) % len(kinds)]
            segment, mask = _instance_segment(ring, kind, height, width)
            colour = PALETTE[next(palette)]
            image[mask.astype(bool)] = colour
            colours[(image_index, instance_index)] = colour
            segments.append(segment)
            boxes.append(masks_to_boxes_xyxy(mask[None])[0])  # tight box of the painted pixels
        path = root / f"image_{image_index:03d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        annotations.append(
            ImageAnnotation(
                image_path=path,
                width=width,
                height=height,
                labels=rng.integers(0, num_classes, len(cells)).astype(np.int64),
                boxes_xyxy=np.array(boxes, np.float32).reshape(-1, 4),
                segments=segments,
            )
        )
    for extra in range(backgrounds):
        height, width = sizes[extra % len(sizes)]
        path = root / f"background_{extra:03d}.png"
        cv2.imwrite(str(path), np.full((height, width, 3), 30, np.uint8))
        annotations.append(ImageAnnotation(image_path=path, width=width, height=height))
    return SyntheticSet(annotations, colours)


def colour_pixels(image_hwc: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """[H, W] bool: pixels within `COLOUR_TOLERANCE` of `colour` in every channel."""
    difference = np.abs(image_hwc.astype(np.int16) - colour.astype(np.int16))
    return (difference <= COLOUR_TOLERANCE).all(axis=-1)


def image_to_uint8(image_chw: np.ndarray) -> np.ndarray:
    """[3, H, W] float in [0, 1] -> [H, W, 3] uint8."""
    return np.round(np.asarray(image_chw).transpose(1, 2, 0) * 255).astype(np.uint8)


def boxes_to_pixels(boxes_cxcywh: np.ndarray, height: int, width: int) -> np.ndarray:
    """[N, 4] normalised cxcywh -> [N, 4] absolute xyxy pixels."""
    boxes = np.asarray(boxes_cxcywh, np.float64).reshape(-1, 4) * [width, height, width, height]
    half = boxes[:, 2:] / 2
    return np.concatenate([boxes[:, :2] - half, boxes[:, :2] + half], axis=1)


def augment_with(base: AugmentConfig, **changes: object) -> AugmentConfig:
    """`base` with some settings changed (validated like the project file's section)."""
    return AugmentConfig.model_validate({**base.model_dump(), **changes})
