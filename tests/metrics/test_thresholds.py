"""Precision/recall/F1 at confidence thresholds and the best-threshold search, on hand-built
cases whose answers are worked out in the comments."""

from __future__ import annotations

import numpy as np
import pytest

from dfseg.metrics import (
    ImageGroundTruth,
    ImagePredictions,
    MetricsInputError,
    best_threshold,
    match_for_thresholds,
)


def _scene() -> tuple[list[ImageGroundTruth], list[ImagePredictions]]:
    """Two images; non-crowd objects: class 0 = {A, B}, class 1 = {C, D}.

    image 0: A [0,0,10,10] c0, B [20,20,30,30] c0, C [40,40,50,50] c1
      p1 c0 on A exactly, .9 -> TP (IoU 1)
      p2 c0 on A shifted, .8 -> FP (A already taken)
      p4 c1 near C, IoU 1/3, .7 -> FP
      p3 c0 on B, IoU 100/120, .75 -> TP
      p5 c1 on nothing, .3 -> FP
    image 1: D [0,0,20,20] c1, crowd c0 [50,50,100,100]
      p6 c1 on D exactly, .95 -> TP
      p7 c0 inside the crowd, .85 -> ignored
      p8 c0 on D (wrong class), .5 -> FP
    """
    gt0 = ImageGroundTruth(
        np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], float), np.array([0, 0, 1])
    )
    pred0 = ImagePredictions(
        np.array(
            [[0, 0, 10, 10], [2, 0, 12, 10], [45, 40, 55, 50], [20, 20, 30, 32], [60, 60, 70, 70]],
            float,
        ),
        np.array([0.9, 0.8, 0.7, 0.75, 0.3]),
        np.array([0, 0, 1, 0, 1]),
    )
    gt1 = ImageGroundTruth(
        np.array([[0, 0, 20, 20], [50, 50, 100, 100]], float),
        np.array([1, 0]),
        iscrowd=np.array([False, True]),
    )
    pred1 = ImagePredictions(
        np.array([[0, 0, 20, 20], [60, 60, 70, 70], [0, 0, 20, 20]], float),
        np.array([0.95, 0.85, 0.5]),
        np.array([1, 0, 0]),
    )
    return [gt0, gt1], [pred0, pred1]


def test_counts_and_rates_at_thresholds() -> None:
    matches = match_for_thresholds(*_scene(), num_classes=2)
    assert matches.num_instances.tolist() == [2, 2]  # the crowd is not an object
    assert matches.is_ignored.sum() == 1
    metrics = matches.at([0.0, 0.72, 0.78, 0.92, 0.96])
    assert metrics.true_positives.tolist() == [[2, 2, 1, 0, 0], [1, 1, 1, 1, 0]]
    assert metrics.false_positives.tolist() == [[2, 1, 1, 0, 0], [2, 0, 0, 0, 0]]
    assert metrics.false_negatives.tolist() == [[0, 0, 1, 2, 2], [1, 1, 1, 1, 2]]
    overall = metrics.overall("micro")
    np.testing.assert_allclose(overall.precision, [3 / 7, 3 / 4, 2 / 3, 1.0, 0.0])
    np.testing.assert_allclose(overall.recall, [3 / 4, 3 / 4, 1 / 2, 1 / 4, 0.0])
    np.testing.assert_allclose(overall.f1, [6 / 11, 3 / 4, 4 / 7, 0.4, 0.0])
    per_class = metrics.per_class
    np.testing.assert_allclose(per_class.precision[:, 1], [2 / 3, 1.0])
    np.testing.assert_allclose(per_class.f1[:, 1], [0.8, 2 / 3])
    # true-positive IoU at .72: p1 = 1, p3 = 100/120 (class 0), p6 = 1 (class 1)
    np.testing.assert_allclose(per_class.mean_iou[:, 1], [(1 + 100 / 120) / 2, 1.0])
    np.testing.assert_allclose(overall.mean_iou[1], (2 + 100 / 120) / 3)
    assert np.isnan(per_class.mean_iou[0, 4])


def test_macro_average_weighs_classes_equally() -> None:
    macro = match_for_thresholds(*_scene(), num_classes=3).at(0.72).overall("macro")
    assert macro.f1[0] == pytest.approx((0.8 + 2 / 3) / 2)  # class 2 has no ground truth: skipped
    assert macro.recall[0] == pytest.approx((1.0 + 0.5) / 2)


def test_best_threshold_is_middle_of_best_plateau() -> None:
    """Micro F1 by threshold range: (.9, .95] 2/5... (.8, .9] TP2 FP0 -> 2/3, (.75, .8] TP2 FP1 ->
    4/7, (.7, .75] TP3 FP1 -> 3/4 (the peak), (.5, .7] TP3 FP2 -> 2/3. On the 0.001 grid the peak
    spans 0.701..0.750, whose middle is 0.725."""
    best = best_threshold(match_for_thresholds(*_scene()))
    assert best.threshold == pytest.approx(0.725)
    assert best.f1 == pytest.approx(3 / 4)
    assert best.metrics.true_positives[:, 0].tolist() == [2, 1]
    assert best.overall.precision[0] == pytest.approx(0.75)


def test_best_threshold_prefers_the_lower_of_equal_peaks() -> None:
    """With p3 scored .6 instead of .75, micro F1 is 2/3 both at (.8, .9] (TP2 FP0) and at
    (.5, .6] (TP3 FP2), equal up to rounding; the lower plateau (more recall) wins: 0.55."""
    ground_truths, predictions = _scene()
    predictions[0].scores = np.array([0.9, 0.8, 0.7, 0.6, 0.3])
    best = best_threshold(match_for_thresholds(ground_truths, predictions))
    assert best.f1 == pytest.approx(2 / 3)
    assert best.threshold == pytest.approx(0.55)


def test_best_threshold_macro() -> None:
    """Macro F1 by range: (.8, .9] (2/3 + 2/3) / 2, (.7, .75] (.8 + 2/3) / 2 = .733 (the peak),
    (.5, .7] (.8 + .5) / 2 = .65."""
    best = best_threshold(match_for_thresholds(*_scene()), average="macro")
    assert best.f1 == pytest.approx((0.8 + 2 / 3) / 2)
    assert best.threshold == pytest.approx(0.725)


def test_mask_matching_differs_from_box_matching() -> None:
    """Same boxes, but the predicted mask covers a quarter of the object: a box TP, a mask FP."""
    object_mask = np.zeros((1, 40, 40), bool)
    object_mask[0, 0:20, 0:20] = True
    partial = np.zeros((1, 40, 40), bool)
    partial[0, 0:10, 0:10] = True
    gt = ImageGroundTruth(np.array([[0, 0, 20, 20]], float), np.array([0]), masks=object_mask)
    pred = ImagePredictions(
        np.array([[0, 0, 20, 20]], float), np.array([0.7]), np.array([0]), masks=partial
    )
    boxes = match_for_thresholds([gt], [pred], "bbox")
    masks = match_for_thresholds([gt], [pred], "segm")
    assert boxes.is_true_positive.tolist() == [True]
    assert masks.is_true_positive.tolist() == [False]
    assert best_threshold(boxes).f1 == pytest.approx(1.0)
    assert best_threshold(masks).f1 == 0.0


def test_matches_point_back_to_images_and_ground_truth_rows() -> None:
    matches = match_for_thresholds(*_scene())
    p3 = np.flatnonzero((matches.image == 0) & (matches.local_index == 3))[0]
    assert matches.gt_local_index[p3] == 1  # B
    p7 = np.flatnonzero((matches.image == 1) & (matches.local_index == 1))[0]
    assert matches.is_ignored[p7] and matches.gt_local_index[p7] == 1  # the crowd row


def test_invalid_arguments() -> None:
    with pytest.raises(MetricsInputError, match="iou_threshold"):
        match_for_thresholds(*_scene(), iou_threshold=0.0)
    with pytest.raises(MetricsInputError, match="ascending"):
        best_threshold(match_for_thresholds(*_scene()), thresholds=[0.5, 0.2])
    with pytest.raises(MetricsInputError, match="average"):
        match_for_thresholds(*_scene()).at(0.5).overall("weighted")  # type: ignore[arg-type]
