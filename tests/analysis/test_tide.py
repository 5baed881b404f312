"""TIDE classification and dAP on hand-built cases with one error of each type."""

from __future__ import annotations

import numpy as np
import pytest
from tide_cases import (
    PREDICTIONS,
    case_ground_truth,
    case_predictions,
    reference_ap,
)

from dfseg.analysis.errors.tide import (
    ERROR_TYPES,
    GROUND_TRUTH_OUTCOMES,
    PREDICTION_OUTCOMES,
    classify_errors,
)
from dfseg.analysis.errors.tide_fix import apply_fix, error_ap_deltas
from dfseg.analysis.exceptions import AnalysisError
from dfseg.metrics import ImageGroundTruth, ImagePredictions

F, T = False, True


def outcomes_by_name(iou_type: str = "bbox", with_masks: bool = False) -> dict[str, str]:
    cases = classify_errors(
        [case_ground_truth(with_masks)], [case_predictions(with_masks)], iou_type, num_classes=2
    )  # type: ignore[arg-type]
    names = list(PREDICTIONS)
    return {
        names[row]: PREDICTION_OUTCOMES[code]
        for row, code in zip(cases.pred_row, cases.pred_outcome, strict=True)
    }


@pytest.mark.parametrize(("iou_type", "with_masks"), [("bbox", False), ("segm", True)])
def test_each_constructed_error_gets_its_type(iou_type: str, with_masks: bool) -> None:
    expected = {name: spec[3] for name, spec in PREDICTIONS.items()}
    assert outcomes_by_name(iou_type, with_masks) == expected


def test_objects_hit_by_fixable_errors_are_not_counted_as_missed() -> None:
    cases = classify_errors([case_ground_truth()], [case_predictions()], num_classes=2)
    gt_outcomes = [GROUND_TRUTH_OUTCOMES[c] for c in cases.gt_outcome]
    assert gt_outcomes == ["found", "found", "found", "missed", "attributed", "attributed"]
    assert cases.counts() == dict.fromkeys(ERROR_TYPES, 1)
    assert cases.false_positive.sum() == 5 and cases.false_negative.sum() == 3
    promoted = {list(PREDICTIONS)[r] for r in cases.pred_row[cases.becomes_true_positive]}
    assert promoted == {"p2", "p3"}


def fixed_map50(fix: str) -> float:
    gt, pred = case_ground_truth(), case_predictions()
    cases = classify_errors([gt], [pred], num_classes=2)
    gts, preds = apply_fix(cases, [gt], [pred], fix)
    return error_ap_deltas(gts, preds, num_classes=2).ap


# Hand-derived TP/FP sequences (by descending score) and object counts after each fix:
# cat: p0 T .90, p1 F .85, p2 F .80, p3 F .75, p6 T .70 over 4 cats; dog: p4 F .90, p5 F .85,
# p7 T .78 over 2 dogs.
EXPECTED_AFTER_FIX = {
    None: (([T, F, F, F, T], 4), ([F, F, T], 2)),
    "classification": (([T, F, F, T], 4), ([F, F, T, T], 2)),  # p2 -> dog on g4
    "localization": (([T, F, F, T, T], 4), ([F, F, T], 2)),  # p3 -> on g5
    "both": (([T, F, F, F, T], 4), ([F, T], 2)),  # p5 removed
    "duplicate": (([T, F, F, T], 4), ([F, F, T], 2)),  # p1 removed
    "background": (([T, F, F, F, T], 4), ([F, T], 2)),  # p4 removed
    "missed": (([T, F, F, F, T], 3), ([F, F, T], 2)),  # g3 dropped
    "false_positives": (([T, T], 4), ([T], 2)),
    "false_negatives": (([T, F, F, F, T], 2), ([F, F, T], 1)),  # g3, g4, g5 dropped
}


def expected_map(fix: str | None) -> float:
    (cat_hits, cats), (dog_hits, dogs) = EXPECTED_AFTER_FIX[fix]
    return (reference_ap(cat_hits, cats) + reference_ap(dog_hits, dogs)) / 2


def test_dap_of_each_fix_matches_hand_derived_ap() -> None:
    deltas = error_ap_deltas([case_ground_truth()], [case_predictions()], num_classes=2)
    assert deltas.ap == pytest.approx(expected_map(None))
    for fix, delta in deltas.delta.items():
        assert delta == pytest.approx(expected_map(fix) - expected_map(None)), fix
        assert delta > 0, fix  # every constructed error costs AP here
        assert fixed_map50(fix) == pytest.approx(expected_map(fix)), fix
    assert deltas.delta["classification"] > deltas.delta["duplicate"]


def test_masks_that_equal_the_boxes_give_the_box_numbers() -> None:
    boxes = error_ap_deltas([case_ground_truth()], [case_predictions()], num_classes=2)
    masks = error_ap_deltas(
        [case_ground_truth(True)], [case_predictions(True)], num_classes=2, iou_type="segm"
    )
    assert masks.ap == pytest.approx(boxes.ap)
    assert masks.delta == pytest.approx(boxes.delta)


def test_at_a_strict_threshold_a_loose_duplicate_is_a_localization_error_that_is_removed() -> None:
    gt, pred = case_ground_truth(), case_predictions()
    cases = classify_errors([gt], [pred], iou_threshold=0.95, num_classes=2)
    p1 = list(PREDICTIONS).index("p1")
    flat = int(np.flatnonzero(cases.pred_row == p1)[0])
    assert PREDICTION_OUTCOMES[cases.pred_outcome[flat]] == "localization"
    assert cases.pred_target[flat] == 0  # g0, already found by p0: fixing cannot promote p1
    assert not cases.becomes_true_positive[flat]
    _, (fixed,) = apply_fix(cases, [gt], [pred], "localization")
    assert len(fixed) == len(pred) - 1  # p1 removed, p3 promoted (kept)
    assert [0.0, 0.0, 100.0, 90.0] not in fixed.boxes_xyxy.tolist()


def test_ap50_95_averages_the_gain_over_thresholds() -> None:
    strict = error_ap_deltas(
        [case_ground_truth()], [case_predictions()], num_classes=2, metric="ap50_95"
    )
    loose = error_ap_deltas([case_ground_truth()], [case_predictions()], num_classes=2)
    # Every true positive here is exact, so AP is the same at every IoU threshold ...
    assert strict.ap == pytest.approx(loose.ap)
    # ... but above IoU 0.9 the duplicate becomes a localization error: fixing localization also
    # removes it there, so that fix gains more on average; the duplicate fix gains less.
    assert strict.delta["localization"] > loose.delta["localization"]
    assert strict.delta["duplicate"] < loose.delta["duplicate"]
    assert all(value >= 0 for value in strict.delta.values())


def test_of_several_errors_on_one_object_only_the_best_scored_is_promoted() -> None:
    gt = ImageGroundTruth(np.array([[0, 0, 100, 100]]), np.array([1]))
    boxes = np.array([[0, 0, 100, 100], [2, 2, 100, 100], [0, 0, 98, 98]])
    pred = ImagePredictions(boxes, np.array([0.5, 0.9, 0.7]), np.array([0, 0, 0]))
    cases = classify_errors([gt], [pred], num_classes=2)
    assert cases.counts()["classification"] == 3
    assert cases.pred_row[cases.becomes_true_positive].tolist() == [1]  # score 0.9
    _, (fixed,) = apply_fix(cases, [gt], [pred], "classification")
    assert len(fixed) == 1 and fixed.labels.tolist() == [1]
    assert fixed.boxes_xyxy.tolist() == [[0, 0, 100, 100]] and fixed.scores.tolist() == [0.9]


def test_crowd_regions_and_empty_images() -> None:
    crowd = ImageGroundTruth(
        np.array([[0, 0, 100, 100], [300, 300, 400, 400]]), np.array([0, 0]), iscrowd=[True, False]
    )
    on_crowd = ImagePredictions(np.array([[10, 10, 90, 90]]), np.array([0.9]), np.array([0]))
    empty_gt = ImageGroundTruth(np.zeros((0, 4)), np.zeros(0))
    stray = ImagePredictions(np.array([[0, 0, 10, 10]]), np.array([0.3]), np.array([0]))
    cases = classify_errors([crowd, empty_gt], [on_crowd, stray], num_classes=1)
    assert [PREDICTION_OUTCOMES[c] for c in cases.pred_outcome] == ["ignored", "background"]
    assert [GROUND_TRUTH_OUTCOMES[c] for c in cases.gt_outcome] == ["crowd", "missed"]


def test_bad_thresholds_are_rejected() -> None:
    with pytest.raises(AnalysisError, match="background_threshold"):
        classify_errors([case_ground_truth()], [case_predictions()], background_threshold=0.6)
