"""Class-aware greedy NMS in numpy, for post-processing on the host (the in-graph decoding is
`dfseg.nn.postprocess`)."""

from __future__ import annotations

import numpy as np

from dfseg.ops.box_overlap import box_iou_xyxy


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
    boxes = boxes_xyxy[order]  # [N, 4]
    same = labels[order][:, None] == labels[order][None, :]  # [N, N]
    iou = box_iou_xyxy(boxes, boxes)  # [N, N]
    suppresses = (iou > iou_threshold) & same
    keep = np.ones(len(order), dtype=bool)
    for index in range(len(order)):
        if keep[index]:
            keep[index + 1 :] &= ~suppresses[index, index + 1 :]
    return order[keep].astype(np.int64)
