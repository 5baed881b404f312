"""Comparing detections of two backends in any order (near-tied scores may swap)."""

from __future__ import annotations

import numpy as np

from dfseg.export.parity import box_iou_numpy
from dfseg.structures import Detections


def assert_same_detections(got: Detections, want: Detections, score_atol: float = 5e-4) -> None:
    """Each detection of `want` has one in `got` with the same label, a score within
    `score_atol` and a box IoU above 0.99. The default tolerance covers OpenVINO folding the
    uint8 input scaling into the first convolution: float rounding that random-weight test
    models amplify to ~1e-4 on their ~0.04 scores, enough to reorder near-tied detections."""
    assert len(got) == len(want)
    ious = box_iou_numpy(want.boxes_xyxy, got.boxes_xyxy)
    for row in range(len(want)):
        same = (got.labels == want.labels[row]) & (
            np.abs(got.scores - want.scores[row]) < score_atol
        )
        assert (ious[row] * same).max() > 0.99, f"detection {row} has no counterpart"
