"""`build_eval_report`: the validation table and its results.csv row."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pytest

from dfseg.metrics import (
    EvalReport,
    ImageGroundTruth,
    ImagePredictions,
    best_threshold,
    build_eval_report,
    evaluate_coco,
    match_for_thresholds,
)
from dfseg.metrics.masks import rle_from_boxes_xyxy

DETECT_COLUMNS = [
    "metrics/precision(B)",
    "metrics/recall(B)",
    "metrics/f1(B)",
    "metrics/mAP50(B)",
    "metrics/mAP50-95(B)",
    "metrics/mean_iou(B)",
    "metrics/conf_threshold",
]


def test_detect_report_agrees_with_its_parts(dataset_factory: Callable) -> None:
    ground_truths, predictions = dataset_factory(3, num_images=20, num_classes=3, num_preds=30)
    names = ["cat", "dog", "bird"]
    report = build_eval_report(ground_truths, predictions, names)
    coco = evaluate_coco(ground_truths, predictions, "bbox", num_classes=3)
    best = best_threshold(match_for_thresholds(ground_truths, predictions, "bbox"))
    assert report.task == "detect"
    assert report.threshold_source == "bbox"
    assert report.threshold == best.threshold
    assert report.overall.box.map50_95 == pytest.approx(coco.stats[0])
    assert report.overall.box.map50 == pytest.approx(coco.stats[1])
    assert report.overall.box.f1 == pytest.approx(best.f1)
    assert report.overall.mask is None
    assert [row.name for row in report.classes] == names
    assert report.overall.instances == sum(row.instances for row in report.classes)
    assert report.overall.images == 20
    for k, row in enumerate(report.classes):
        assert row.box.map50_95 == pytest.approx(coco.per_class_ap()[k])
        assert row.instances == int(sum((~g.crowd & (g.labels == k)).sum() for g in ground_truths))
        assert row.images == sum(bool((~g.crowd & (g.labels == k)).any()) for g in ground_truths)
    assert report.coco["bbox"]["AP"] == pytest.approx(coco.stats[0])


def test_results_row_columns_are_stable(dataset_factory: Callable) -> None:
    first = build_eval_report(*dataset_factory(4, num_images=6, num_classes=2), ["a", "b"])
    empty_gt = [ImageGroundTruth(np.zeros((0, 4)), np.zeros(0))]
    empty_pred = [ImagePredictions(np.zeros((0, 4)), np.zeros(0), np.zeros(0))]
    second = build_eval_report(empty_gt, empty_pred, ["a", "b"], threshold=0.3)
    assert list(first.to_row()) == DETECT_COLUMNS
    assert list(second.to_row()) == DETECT_COLUMNS
    assert second.threshold_source == "given"
    assert second.to_row()["metrics/conf_threshold"] == 0.3
    assert math.isnan(second.to_row()["metrics/mAP50-95(B)"])


def test_segment_report_picks_threshold_on_masks(dataset_factory: Callable) -> None:
    ground_truths, predictions = dataset_factory(
        5, num_images=12, num_classes=2, height=64, width=80, num_preds=20, with_masks=True
    )
    report = build_eval_report(ground_truths, predictions, ["a", "b"])
    mask_best = best_threshold(match_for_thresholds(ground_truths, predictions, "segm"))
    assert report.task == "segment"
    assert report.threshold_source == "segm"
    assert report.threshold == mask_best.threshold
    assert report.overall.mask is not None
    assert report.overall.mask.f1 == pytest.approx(mask_best.f1)
    segm = evaluate_coco(ground_truths, predictions, "segm", num_classes=2)
    assert report.overall.mask.map50_95 == pytest.approx(segm.stats[0])
    row = report.to_row()
    assert "metrics/mAP50-95(M)" in row and "metrics/mAP50-95(B)" in row
    assert row["metrics/mAP50-95(M)"] != row["metrics/mAP50-95(B)"]
    table = report.class_table()
    assert table[0]["class"] == "all" and len(table) == 3
    assert "map50(M)" in table[1]


def test_report_round_trips_through_json(dataset_factory: Callable) -> None:
    ground_truths, predictions = dataset_factory(6, num_images=5, num_classes=2)
    report = build_eval_report(ground_truths, predictions, ["a", "b", "never seen"])
    data = json.loads(report.model_dump_json())
    assert data["classes"][1]["name"] == "b"
    assert data["classes"][2]["box"]["map50"] == "NaN"
    restored = EvalReport.model_validate(data)
    assert restored.overall.instances == report.overall.instances
    assert restored.overall.box.map50 == pytest.approx(report.overall.box.map50)
    assert math.isnan(restored.classes[2].box.recall)


def _box(x1: float, y1: float, x2: float, y2: float) -> np.ndarray:
    return np.array([[x1, y1, x2, y2]], float)


def _square_mask(x1: int, y1: int, x2: int, y2: int, size: int = 32) -> np.ndarray:
    mask = np.zeros((1, size, size), bool)
    mask[0, y1:y2, x1:x2] = True
    return mask


def test_box_only_instances_are_left_out_of_mask_metrics_not_counted_as_errors() -> None:
    # image 0: one object with a mask, one labelled with a box only; image 1: box-only labels
    mixed = ImageGroundTruth(
        np.concatenate([_box(0, 0, 10, 10), _box(16, 16, 30, 30)]), np.array([0, 0]),
        masks=np.concatenate([_square_mask(0, 0, 10, 10), _square_mask(16, 16, 30, 30)]),
        mask_known=np.array([True, False]), image_size=(32, 32),
    )  # fmt: skip
    boxes_only = ImageGroundTruth(_box(4, 4, 20, 20), np.array([0]), image_size=(32, 32))
    predictions = [
        ImagePredictions(
            np.concatenate([_box(0, 0, 10, 10), _box(17, 17, 29, 29)]), np.array([0.9, 0.8]),
            np.array([0, 0]),
            masks=np.concatenate([_square_mask(0, 0, 10, 10), _square_mask(17, 17, 29, 29)]),
        ),
        ImagePredictions(
            _box(4, 4, 20, 20), np.array([0.7]), np.array([0]), masks=_square_mask(5, 5, 19, 19)
        ),
    ]  # fmt: skip
    report = build_eval_report([mixed, boxes_only], predictions, ["a"], threshold=0.5)
    assert report.mask_instances_left_out == 2
    assert report.overall.instances == 3  # boxes count every object
    assert report.overall.box.recall == pytest.approx(1.0)
    mask = report.overall.mask
    assert mask is not None
    # one object has a mask and is found; the masks on box-only objects are no false positives
    assert mask.precision == pytest.approx(1.0) and mask.recall == pytest.approx(1.0)
    assert mask.map50 == pytest.approx(1.0)


def test_mask_metrics_with_box_only_instances_equal_pycocotools_with_them_as_crowd(
    dataset_factory: Callable, pycocotools_runner: Callable
) -> None:
    ground_truths, predictions = dataset_factory(11, num_images=8, num_classes=3, with_masks=True)
    rng = np.random.default_rng(0)
    mixed, reference = [], []
    for gt in ground_truths:
        known = rng.random(len(gt)) > 0.3
        mixed.append(
            ImageGroundTruth(
                gt.boxes_xyxy, gt.labels, gt.crowd, masks=gt.rles, image_size=gt.image_size,
                mask_known=known,
            )
        )  # fmt: skip
        reference.append(
            ImageGroundTruth(
                gt.boxes_xyxy, gt.labels, gt.crowd | ~known, image_size=gt.image_size,
                masks=[
                    rle if ok else rle_from_boxes_xyxy(box[None], *gt.image_size)[0]
                    for rle, ok, box in zip(gt.rles, known, gt.boxes_xyxy, strict=True)
                ],
            )
        )  # fmt: skip
    report = build_eval_report(mixed, predictions, ["a", "b", "c"])
    expected = pycocotools_runner(reference, predictions, "segm", 3)
    assert report.coco["segm"]["AP"] == pytest.approx(expected.stats[0], abs=1e-12)
    assert report.coco["segm"]["AP50"] == pytest.approx(expected.stats[1], abs=1e-12)
    assert report.mask_instances_left_out == sum(
        int((~m.known_masks & ~m.crowd).sum()) for m in mixed
    )
    assert report.mask_instances_left_out > 0
    boxes = pycocotools_runner(ground_truths, predictions, "bbox", 3)
    assert report.coco["bbox"]["AP"] == pytest.approx(boxes.stats[0], abs=1e-12)  # all objects


def test_a_model_that_matched_nothing_keeps_the_fallback_threshold() -> None:
    ground_truth = [ImageGroundTruth(np.array([[0, 0, 10, 10]], np.float64), np.array([0]))]
    far_away = [
        ImagePredictions(
            np.array([[50, 50, 60, 60], [70, 70, 90, 90]], np.float64),
            np.array([0.9, 0.2]),
            np.array([0, 0]),
        )
    ]
    report = build_eval_report(ground_truth, far_away, ["a"], fallback_threshold=0.37)
    assert report.threshold_source == "fallback" and report.threshold == 0.37
    assert report.overall.box.f1 == 0.0  # at 0.37, not a maximum of anything
    best = best_threshold(match_for_thresholds(ground_truth, far_away), fallback=0.37)
    assert not best.found and best.threshold == 0.37
    hit = [ImagePredictions(np.array([[0, 0, 10, 10]], np.float64), np.array([0.8]), np.array([0]))]
    found = build_eval_report(ground_truth, hit, ["a"], fallback_threshold=0.37)
    assert found.threshold_source == "bbox" and found.threshold != 0.37
