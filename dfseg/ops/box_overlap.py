"""Pairwise overlap of absolute xyxy boxes in numpy (host-side NMS, tracking, tile merging)."""

from __future__ import annotations

import numpy as np


def box_areas_xyxy(boxes_xyxy: np.ndarray) -> np.ndarray:
    """[N] areas of [N, 4] xyxy boxes (0 for degenerate boxes), float64."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def box_intersections_xyxy(boxes1_xyxy: np.ndarray, boxes2_xyxy: np.ndarray) -> np.ndarray:
    """[N, M] intersection areas of [N, 4] and [M, 4] xyxy boxes, float64."""
    a = np.asarray(boxes1_xyxy, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes2_xyxy, dtype=np.float64).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])  # [N, M, 2]
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])  # [N, M, 2]
    return np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)  # [N, M]


def box_iou_xyxy(boxes1_xyxy: np.ndarray, boxes2_xyxy: np.ndarray) -> np.ndarray:
    """[N, M] IoU of [N, 4] and [M, 4] absolute xyxy boxes (0 where the union is empty)."""
    inter = box_intersections_xyxy(boxes1_xyxy, boxes2_xyxy)
    union = box_areas_xyxy(boxes1_xyxy)[:, None] + box_areas_xyxy(boxes2_xyxy)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def box_ios_xyxy(boxes1_xyxy: np.ndarray, boxes2_xyxy: np.ndarray) -> np.ndarray:
    """[N, M] intersection over the smaller box's area (1 when one box holds the other; 0 for
    degenerate boxes). Two parts of one object cut by a tile border overlap little by IoU but
    fully by this measure within the strip both tiles see."""
    inter = box_intersections_xyxy(boxes1_xyxy, boxes2_xyxy)
    smaller = np.minimum(box_areas_xyxy(boxes1_xyxy)[:, None], box_areas_xyxy(boxes2_xyxy)[None, :])
    return np.where(smaller > 0, inter / np.where(smaller > 0, smaller, 1.0), 0.0)
