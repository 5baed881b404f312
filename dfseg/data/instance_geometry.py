"""Instances (boxes and segments) carried through a 2-D affine map from image to network input.

Affine matrices here are [2, 3] float64 in the continuous pixel convention of `dfseg.ops.resize`
and `dfseg.ops.masks` (pixel i covers [i, i + 1), its centre is i + 0.5). Polygons are mapped
vertex by vertex and rasterised directly at the output size, so no full-resolution mask is ever
made for them; RLE masks are decoded at their own size and warped.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from dfseg.ops.masks import polygon_to_mask, segment_to_mask
from dfseg.structures import Polygons, Segment


def transform_points(points_xy: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """[K, 2] (x, y) -> [K, 2] mapped by the [2, 3] affine (float64)."""
    points = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    return points @ affine[:, :2].T + affine[:, 2]


def transform_boxes_xyxy(boxes_xyxy: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """[N, 4] xyxy -> [N, 4] float32 xyxy enclosing the mapped corners (exact for scale+shift)."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    corners = boxes[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 4, 2)  # [N, 4, 2]
    mapped = transform_points(corners.reshape(-1, 2), affine).reshape(-1, 4, 2)
    return np.concatenate([mapped.min(axis=1), mapped.max(axis=1)], axis=1).astype(np.float32)


def pixel_index_affine(affine: np.ndarray) -> np.ndarray:
    """The same map for cv2.warpAffine, which works on pixel indices (centres at integers)."""
    index_affine = affine.astype(np.float64, copy=True)
    index_affine[:, 2] += affine[:, :2] @ np.array([0.5, 0.5]) - 0.5
    return index_affine


def _rasterize_one(
    segment: Segment | None, box_xyxy: np.ndarray, affine: np.ndarray, output_hw: tuple[int, int]
) -> np.ndarray:
    height, width = output_hw
    if segment is None:  # a box-only instance: its mask is the (mapped) box
        x1, y1, x2, y2 = box_xyxy
        ring = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])
        return polygon_to_mask([transform_points(ring, affine)], height, width)
    if isinstance(segment, Polygons):
        rings = [transform_points(ring, affine) for ring in segment.rings]
        return segment_to_mask(Polygons(tuple(rings)), height, width)
    source = segment_to_mask(segment, segment.height, segment.width)  # RLE at its own size
    # Linear interpolation of a {0, 1} uint8 image rounds to the nearest of 0/1: a 0.5 threshold.
    return cv2.warpAffine(
        source, pixel_index_affine(affine), (width, height), flags=cv2.INTER_LINEAR
    )


def rasterize_instances(
    segments: Sequence[Segment | None],
    boxes_xyxy: np.ndarray,
    affine: np.ndarray,
    output_hw: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Instance masks in output space.

    Args:
        segments: N segments in source-image pixels (`Polygons`, `RLE`, or None for box-only).
        boxes_xyxy: [N, 4] absolute xyxy source-image pixels (used for box-only instances).
        affine: [2, 3] source -> output pixels.
        output_hw: (height, width) of the output.

    Returns:
        (masks [N, H, W] uint8 {0, 1}, has_mask [N] bool). Box-only instances get their mapped
        box as mask and `has_mask` False, so a mask loss can leave them out.
    """
    height, width = output_hw
    masks = np.zeros((len(segments), height, width), dtype=np.uint8)
    for index, segment in enumerate(segments):
        masks[index] = _rasterize_one(segment, boxes_xyxy[index], affine, output_hw)
    has_mask = np.array([segment is not None for segment in segments], dtype=bool)
    return masks, has_mask
