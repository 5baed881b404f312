"""Host-side class-aware greedy NMS on hand-built boxes."""

from __future__ import annotations

import numpy as np

from dfseg.ops.nms import nms_keep


def _boxes(*rows: tuple[float, float, float, float]) -> np.ndarray:
    return np.array(rows, dtype=np.float32).reshape(-1, 4)


def test_an_overlapping_box_of_the_same_class_is_dropped_above_the_threshold_only() -> None:
    boxes = _boxes((0, 0, 10, 10), (1, 0, 11, 10))  # IoU 9/11 = 0.818
    scores, labels = np.array([0.6, 0.9]), np.array([0, 0])
    assert nms_keep(boxes, scores, labels, 0.5).tolist() == [1]
    assert nms_keep(boxes, scores, labels, 0.85).tolist() == [1, 0]
    assert nms_keep(boxes, scores, np.array([0, 1]), 0.5).tolist() == [1, 0]  # other class


def test_greedy_a_suppressed_box_suppresses_nothing() -> None:
    # A overlaps B, B overlaps C, A and C do not touch: greedy keeps A and C (Fast NMS would
    # drop C too, because B outranks it).
    boxes = _boxes((0, 0, 10, 10), (4, 0, 14, 10), (8, 0, 18, 10))
    kept = nms_keep(boxes, np.array([0.9, 0.8, 0.7]), np.zeros(3, np.int64), 0.3)
    assert kept.tolist() == [0, 2]


def test_the_answer_does_not_change_with_per_axis_scaling_and_empty_input_is_empty() -> None:
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 100, (40, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(5, 40, (40, 2))], axis=1)
    scores, labels = rng.uniform(size=40), rng.integers(0, 3, 40)
    scaled = boxes * np.array([3.0, 0.5, 3.0, 0.5])
    assert np.array_equal(
        nms_keep(boxes, scores, labels, 0.4), nms_keep(scaled, scores, labels, 0.4)
    )
    assert len(nms_keep(boxes, scores, labels, 0.4)) < 40
    assert nms_keep(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), 0.5).tolist() == []
