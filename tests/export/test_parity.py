"""The order-insensitive parity comparison: ties and reorderings pass, real differences fail."""

from __future__ import annotations

import numpy as np

from dfseg.export.parity import ParityTolerance, compare_outputs, tolerance_for
from dfseg.runtime.outputs import RawOutputs

TOLERANCE = ParityTolerance(score=1e-3, box_fraction=2e-3, mask_iou=0.9, compared=4, threshold=0.5)


def _outputs(rng: np.random.Generator, k: int = 6) -> RawOutputs:
    corners = rng.uniform(0, 60, (1, k, 2)).astype(np.float32)
    boxes = np.concatenate([corners, corners + rng.uniform(5, 40, (1, k, 2))], -1)
    masks = rng.normal(size=(1, k, 16, 16)).astype(np.float32)
    scores = np.sort(rng.uniform(0, 1, (1, k)).astype(np.float32))[:, ::-1].copy()
    return RawOutputs(rng.integers(0, 3, (1, k)), scores, boxes.astype(np.float32), masks)


def _compare(reference: RawOutputs, candidate: RawOutputs):  # type: ignore[no-untyped-def]
    return compare_outputs(reference, candidate, TOLERANCE, (64, 64), "test", "fp32")


def test_identical_outputs_match_exactly() -> None:
    reference = _outputs(np.random.default_rng(0))
    report = _compare(reference, reference)
    assert report.passed and report.matched == report.compared == 4
    assert report.max_score_diff == 0 and report.max_box_diff_px == 0
    assert report.min_mask_iou == 1.0


def test_tied_detections_in_another_order_still_match() -> None:
    reference = _outputs(np.random.default_rng(1))
    reference.scores[0, :3] = 0.7  # a three-way tie
    order = np.array([2, 0, 1, 3, 4, 5])
    swapped = RawOutputs(
        reference.labels[:, order], reference.scores[:, order] + 1e-4,
        reference.boxes[:, order], reference.mask_logits[:, order],  # type: ignore[index]
    )  # fmt: skip
    report = _compare(reference, swapped)
    assert report.passed, report.failures
    assert report.max_box_diff_px == 0 and report.max_score_diff <= 1.1e-4


def test_moved_box_changed_score_and_wrong_label_fail() -> None:
    reference = _outputs(np.random.default_rng(2))
    moved = RawOutputs(
        reference.labels, reference.scores, reference.boxes + 0.0, reference.mask_logits
    )
    moved.boxes[0, 0] += 3.0
    report = _compare(reference, moved)
    assert not report.passed and "box corners differ" in report.failures[0]
    assert report.max_box_diff_px == np.float32(3.0)

    rescored = RawOutputs(
        reference.labels, reference.scores + 0.01, reference.boxes, reference.mask_logits
    )
    report = _compare(reference, rescored)
    assert not report.passed and report.matched == 0

    relabelled = RawOutputs(
        (reference.labels + 1) % 3, reference.scores, reference.boxes, reference.mask_logits
    )
    assert not _compare(reference, relabelled).passed


def test_broken_masks_fail() -> None:
    reference = _outputs(np.random.default_rng(3))
    assert reference.mask_logits is not None
    broken = RawOutputs(reference.labels, reference.scores, reference.boxes, -reference.mask_logits)
    report = _compare(reference, broken)
    assert not report.passed and report.min_mask_iou is not None and report.min_mask_iou < 0.1


def test_every_detection_above_the_threshold_is_compared() -> None:
    reference = _outputs(np.random.default_rng(4), k=10)
    reference.scores[0] = np.linspace(0.99, 0.9, 10)  # all above the 0.5 threshold
    assert _compare(reference, reference).compared == 10


def test_reduced_precision_is_judged_more_loosely() -> None:
    fp32, bf16 = tolerance_for("fp32", 0.5), tolerance_for("bf16", 0.5)
    assert bf16.score > fp32.score and bf16.box_fraction > fp32.box_fraction
    assert bf16.mask_iou < fp32.mask_iou


def test_reduced_precision_judges_boxes_by_iou() -> None:
    reference = _outputs(np.random.default_rng(5))
    reference.scores[0] = np.linspace(0.99, 0.9, 6)  # all above the threshold
    tolerance = tolerance_for("bf16", 0.5)
    shifted = RawOutputs(
        reference.labels, reference.scores, reference.boxes + 0.0, reference.mask_logits
    )
    width = reference.boxes[0, 0, 2] - reference.boxes[0, 0, 0]
    shifted.boxes[0, 0, [0, 2]] += 0.03 * width  # IoU ~0.94: the same detection
    report = compare_outputs(reference, shifted, tolerance, (64, 64), "test", "bf16")
    assert report.passed and report.min_box_iou is not None and 0.9 < report.min_box_iou < 0.95
    shifted.boxes[0, 0, [0, 2]] += 0.2 * width  # IoU ~0.7: not the same box any more
    report = compare_outputs(reference, shifted, tolerance, (64, 64), "test", "bf16")
    assert not report.passed and any("box IoU" in failure for failure in report.failures)
