"""Class-aware greedy NMS in numpy, for post-processing on the host (the in-graph decoding is
`dfseg.nn.postprocess`)."""

from __future__ import annotations

import numpy as np


def nms_keep(
    boxes_xyxy: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_threshold: float
) -> np.ndarray:
    """Indices kept by class-aware greedy NMS, in descending score order.

    A box is dropped when it overlaps a higher-scoring box of the same class by IoU strictly
    above `iou_threshold` (1.0 keeps everything). IoU is unchanged by per-axis scaling, so boxes
    in network-input pixels give the same answer as in original pixels.

    Args:
        boxes_xyxy: [N, 4] absolute xyxy.
        scores: [N].
        labels: [N] class ids.
        iou_threshold: in [0, 1].

    Returns:
        [M] int64 indices into the inputs.
    """
    order = np.argsort(-scores, kind="stable")
    boxes = boxes_xyxy[order].astype(np.float64)  # [N, 4]
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(
        boxes[:, 3] - boxes[:, 1], 0, None
    )
    same = labels[order][:, None] == labels[order][None, :]  # [N, N]
    top_left = np.maximum(boxes[:, None, :2], boxes[None, :, :2])  # [N, N, 2]
    bottom_right = np.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)  # [N, N]
    union = areas[:, None] + areas[None, :] - inter
    iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
    suppresses = (iou > iou_threshold) & same
    keep = np.ones(len(order), dtype=bool)
    for index in range(len(order)):
        if keep[index]:
            keep[index + 1 :] &= ~suppresses[index, index + 1 :]
    return order[keep].astype(np.int64)
