"""Matching tracks to detections: a cost matrix, then an optimal one-to-one assignment."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from dfseg.ops.box_overlap import box_iou_xyxy

UNMATCHABLE = 1e6


def iou_cost(
    track_boxes_xyxy: np.ndarray, det_boxes_xyxy: np.ndarray, det_scores: np.ndarray | None = None
) -> np.ndarray:
    """[T, D] cost 1 - IoU between track and detection boxes; with `det_scores`, 1 - IoU x score
    (ByteTrack's score fusion: a confident detection wins a tie in overlap)."""
    iou = box_iou_xyxy(track_boxes_xyxy, det_boxes_xyxy)  # [T, D]
    if det_scores is not None and iou.size:
        iou = iou * np.asarray(det_scores, dtype=np.float64)[None, :]
    return 1.0 - iou


def assign(cost: np.ndarray, max_cost: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """The one-to-one assignment of least total cost among pairs costing at most `max_cost`.

    Args:
        cost: [T, D] cost of pairing track t with detection d.
        max_cost: pairs above this cost are never made.

    Returns:
        (matches as (track, detection) index pairs, unmatched tracks, unmatched detections),
        each in ascending index order.
    """
    rows, cols = cost.shape
    if rows == 0 or cols == 0:
        return [], list(range(rows)), list(range(cols))
    allowed = cost <= max_cost
    # Pairs over the limit cost more than any set of allowed ones, so they are chosen only when
    # nothing else is left, and dropped below.
    bounded = np.where(allowed, cost, UNMATCHABLE)
    track_index, det_index = linear_sum_assignment(bounded)
    matches = [
        (int(t), int(d)) for t, d in zip(track_index, det_index, strict=True) if allowed[t, d]
    ]
    matched_tracks = {t for t, _ in matches}
    matched_dets = {d for _, d in matches}
    return (
        sorted(matches),
        [t for t in range(rows) if t not in matched_tracks],
        [d for d in range(cols) if d not in matched_dets],
    )
