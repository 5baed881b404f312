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


def clip_boxes_xyxy(boxes_xyxy: np.ndarray, windows_xyxy: np.ndarray) -> np.ndarray:
    """[..., 4] boxes clipped to windows of the same shape (an empty box where they miss)."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float64)
    windows = np.asarray(windows_xyxy, dtype=np.float64)
    top_left = np.clip(boxes[..., :2], windows[..., :2], windows[..., 2:])
    bottom_right = np.clip(boxes[..., 2:], windows[..., :2], windows[..., 2:])
    return np.concatenate([top_left, np.maximum(bottom_right, top_left)], axis=-1)


def paired_iou_xyxy(boxes1_xyxy: np.ndarray, boxes2_xyxy: np.ndarray) -> np.ndarray:
    """[P] IoU of row-aligned [P, 4] box pairs (0 where the union is empty)."""
    a = np.asarray(boxes1_xyxy, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes2_xyxy, dtype=np.float64).reshape(-1, 4)
    wh = np.clip(np.minimum(a[:, 2:], b[:, 2:]) - np.maximum(a[:, :2], b[:, :2]), 0, None)
    inter = wh[:, 0] * wh[:, 1]
    union = box_areas_xyxy(a) + box_areas_xyxy(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
