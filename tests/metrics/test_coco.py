"""`evaluate_coco` against pycocotools' COCOeval on the same data, plus known answers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools.cocoeval import COCOeval

from dfseg.metrics import (
    SUMMARY_NAMES,
    CocoResult,
    ImageGroundTruth,
    ImagePredictions,
    MetricsInputError,
    evaluate_coco,
)
from dfseg.metrics.masks import rle_from_polygons
from dfseg.structures import Detections, ImageAnnotation, Polygons

TOLERANCE = 1e-6


def _pycocotools_per_class_ap(evaluator: COCOeval) -> np.ndarray:
    precision = evaluator.eval["precision"][:, :, :, 0, -1]  # [T, R, K]
    values = []
    for k in range(precision.shape[2]):
        valid = precision[:, :, k][precision[:, :, k] > -1]
        values.append(np.mean(valid) if len(valid) else np.nan)
    return np.array(values)


def _assert_same_as_pycocotools(result: CocoResult, evaluator: COCOeval) -> None:
    np.testing.assert_allclose(result.stats, evaluator.stats, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(
        result.per_class_ap(), _pycocotools_per_class_ap(evaluator), rtol=0, atol=TOLERANCE
    )
    np.testing.assert_allclose(
        result.precision, evaluator.eval["precision"], rtol=0, atol=TOLERANCE
    )
    np.testing.assert_allclose(result.recall, evaluator.eval["recall"], rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(result.scores, evaluator.eval["scores"], rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize(
    ("seed", "num_classes", "num_preds"),
    [
        (0, 5, 40),  # several classes, crowds, empty images, duplicates, tied scores
        (1, 3, 60),
        (2, 2, 250),  # > 100 predictions per image and class: maxDets truncation matters
        (3, 1, 5),  # few predictions: many ground truths never found
    ],
)
def test_bbox_equals_pycocotools(
    seed: int, num_classes: int, num_preds: int, dataset_factory: Callable, pycocotools_runner
) -> None:
    ground_truths, predictions = dataset_factory(
        seed, num_images=40, num_classes=num_classes, height=160, width=200, num_preds=num_preds
    )
    result = evaluate_coco(ground_truths, predictions, "bbox", num_classes=num_classes)
    reference = pycocotools_runner(ground_truths, predictions, "bbox", num_classes)
    assert (result.stats[:6] > 0).all(), "fixture should exercise small, medium and large objects"
    _assert_same_as_pycocotools(result, reference)


@pytest.mark.parametrize("seed", [10, 11])
def test_segm_equals_pycocotools(seed: int, dataset_factory: Callable, pycocotools_runner) -> None:
    ground_truths, predictions = dataset_factory(
        seed, num_images=30, num_classes=4, height=120, width=160, num_preds=30, with_masks=True
    )
    result = evaluate_coco(ground_truths, predictions, "segm", num_classes=4)
    reference = pycocotools_runner(ground_truths, predictions, "segm", 4)
    assert result.stats[0] > 0
    _assert_same_as_pycocotools(result, reference)


def test_bbox_equals_pycocotools_at_validation_scale(
    dataset_factory: Callable, pycocotools_runner
) -> None:
    """100 images x 300 predictions x 10 classes, the size of a real validation pass."""
    ground_truths, predictions = dataset_factory(
        8, num_images=100, num_classes=10, height=480, width=640, num_preds=300
    )
    result = evaluate_coco(ground_truths, predictions, "bbox", num_classes=10)
    _assert_same_as_pycocotools(result, pycocotools_runner(ground_truths, predictions, "bbox", 10))


def test_segm_equals_pycocotools_with_300_masks_per_image(
    dataset_factory: Callable, pycocotools_runner
) -> None:
    """More than 255 masks per image and more than 100 per class: maxDets truncation for masks."""
    ground_truths, predictions = dataset_factory(
        12, num_images=6, num_classes=2, height=48, width=64, num_preds=300, with_masks=True
    )
    result = evaluate_coco(ground_truths, predictions, "segm", num_classes=2)
    _assert_same_as_pycocotools(result, pycocotools_runner(ground_truths, predictions, "segm", 2))


def test_bbox_with_mask_areas_equals_pycocotools(
    dataset_factory: Callable, pycocotools_runner
) -> None:
    """With masks present, area ranges use mask area (the COCO convention) for bbox too."""
    ground_truths, predictions = dataset_factory(
        21, num_images=25, num_classes=3, height=120, width=160, num_preds=30, with_masks=True
    )
    gt = ground_truths[next(i for i, g in enumerate(ground_truths) if len(g))]
    box_areas = (gt.boxes_xyxy[:, 2] - gt.boxes_xyxy[:, 0]) * (
        gt.boxes_xyxy[:, 3] - gt.boxes_xyxy[:, 1]
    )
    assert not np.allclose(gt.resolved_areas, box_areas)
    result = evaluate_coco(ground_truths, predictions, "bbox", num_classes=3)
    _assert_same_as_pycocotools(result, pycocotools_runner(ground_truths, predictions, "bbox", 3))


def test_segm_polygon_ground_truth_equals_pycocotools(tmp_path: Path, pycocotools_runner) -> None:
    """Polygons rasterised by `from_annotation` match pycocotools' own polygon handling."""
    rng = np.random.default_rng(5)
    height, width = 90, 120
    ground_truths, predictions = [], []
    for index in range(12):
        rings, boxes = [], []
        for _ in range(int(rng.integers(1, 4))):
            centre = rng.uniform([20, 20], [width - 20, height - 20])
            angles = np.sort(rng.uniform(0, 2 * np.pi, 7))
            radius = rng.uniform(5, 18, 7)[:, None]
            ring = (centre + radius * np.stack([np.cos(angles), np.sin(angles)], 1)).astype(
                np.float32
            )
            rings.append(Polygons((ring,)))
            boxes.append([*ring.min(0), *ring.max(0)])
        annotation = ImageAnnotation(
            image_path=tmp_path / f"{index}.jpg", width=width, height=height,
            labels=rng.integers(0, 2, len(rings)), boxes_xyxy=np.array(boxes, np.float32),
            segments=list(rings),
        )  # fmt: skip
        ground_truths.append(ImageGroundTruth.from_annotation(annotation))
        jittered = np.array(boxes) + rng.normal(0, 2, (len(boxes), 4))
        masks = [
            rle_from_polygons(Polygons((r.rings[0] + rng.normal(0, 1.5, 2),)), height, width)
            for r in rings
        ]
        predictions.append(
            ImagePredictions(
                jittered, rng.uniform(0.1, 1, len(rings)), annotation.labels, masks=masks
            )
        )
    result = evaluate_coco(ground_truths, predictions, "segm", num_classes=2)
    assert result.stats[1] > 0.5
    _assert_same_as_pycocotools(result, pycocotools_runner(ground_truths, predictions, "segm", 2))


def _box_image(boxes: list[list[float]], labels: list[int], **kwargs: Any) -> ImageGroundTruth:
    return ImageGroundTruth(np.array(boxes, np.float64).reshape(-1, 4), np.array(labels), **kwargs)


def _preds(boxes: list[list[float]], scores: list[float], labels: list[int]) -> ImagePredictions:
    return ImagePredictions(
        np.array(boxes, np.float64).reshape(-1, 4), np.array(scores), np.array(labels)
    )


def test_hand_computed_average_precision() -> None:
    """Ranking TP, FP, TP over 2 objects: precision envelope 1 up to recall .5, then 2/3."""
    gt = _box_image([[0, 0, 40, 40], [100, 100, 140, 140]], [0, 0])
    preds = _preds(
        [[0, 0, 40, 40], [200, 0, 240, 40], [100, 100, 140, 140]], [0.9, 0.8, 0.7], [0, 0, 0]
    )
    result = evaluate_coco([gt], [preds], num_classes=1)
    expected_ap = (51 * 1.0 + 50 * (2 / 3)) / 101
    summary = result.summary()
    assert summary["AP"] == pytest.approx(expected_ap)
    assert summary["AP50"] == pytest.approx(expected_ap)
    assert summary["AR1"] == pytest.approx(0.5)  # one prediction per image and class
    assert summary["AR100"] == pytest.approx(1.0)
    assert summary["APs"] == -1.0  # 40x40 boxes are medium: no small objects at all
    assert summary["APm"] == pytest.approx(expected_ap)


def test_perfect_predictions_score_one_and_crowd_is_neutral() -> None:
    gt = _box_image(
        [[0, 0, 20, 20], [50, 50, 150, 150], [0, 100, 60, 160]],
        [0, 1, 0],
        iscrowd=np.array([0, 0, 1]),
    )
    preds = _preds(
        [[0, 0, 20, 20], [50, 50, 150, 150], [5, 105, 25, 125], [10, 110, 30, 130]],
        [0.5, 0.6, 0.9, 0.95], [0, 1, 0, 0],
    )  # fmt: skip
    result = evaluate_coco([gt], [preds], num_classes=2)
    assert result.summary()["AP"] == pytest.approx(1.0)
    assert result.num_instances.tolist() == [1, 1]


def test_no_predictions_gives_zero_and_no_ground_truth_gives_minus_one() -> None:
    gt = _box_image([[0, 0, 20, 20]], [0])
    empty = _preds([], [], [])
    result = evaluate_coco([gt, _box_image([], [])], [empty, empty], num_classes=2)
    assert result.summary()["AP"] == 0.0
    assert result.summary()["AR100"] == 0.0
    assert np.isnan(result.per_class_ap()[1])
    nothing = evaluate_coco(
        [_box_image([], [])], [_preds([[0, 0, 5, 5]], [0.5], [0])], num_classes=1
    )
    assert (nothing.stats == -1).all()
    assert list(nothing.summary()) == list(SUMMARY_NAMES)


def test_detections_are_accepted_as_predictions() -> None:
    gt = _box_image([[0, 0, 20, 20]], [1])
    detections = Detections(
        boxes_xyxy=np.array([[0, 0, 20, 20]], np.float32), scores=np.array([0.8], np.float32),
        labels=np.array([1]), class_names=["a", "b"], image_size=(64, 64),
    )  # fmt: skip
    assert evaluate_coco([gt], [detections], num_classes=2).summary()["AP"] == pytest.approx(1.0)


def test_bad_inputs_raise_specific_errors() -> None:
    gt = _box_image([[0, 0, 20, 20]], [0])
    preds = _preds([[0, 0, 20, 20]], [0.8], [3])
    with pytest.raises(MetricsInputError, match=r"image 0 predictions: class id 3 outside 0\.\.1"):
        evaluate_coco([gt], [preds], num_classes=2)
    with pytest.raises(MetricsInputError, match="1 ground-truth images but 2 prediction entries"):
        evaluate_coco([gt], [preds, preds])
    with pytest.raises(
        MetricsInputError, match="image 0 ground truth: box-only ground truth needs image_size"
    ):
        evaluate_coco([gt], [_preds([[0, 0, 20, 20]], [0.8], [0])], "segm")
    gt_with_masks = _box_image([[0, 0, 20, 20]], [0], masks=np.ones((1, 32, 32), bool))
    with pytest.raises(MetricsInputError, match="image 0 predictions: mask metrics need predicted"):
        evaluate_coco([gt_with_masks], [_preds([[0, 0, 20, 20]], [0.8], [0])], "segm")
    wrong_size = ImagePredictions(np.zeros((1, 4)), [0.5], [0], masks=np.ones((1, 16, 32), bool))
    with pytest.raises(MetricsInputError, match=r"mask sizes .* differ"):
        evaluate_coco([gt_with_masks], [wrong_size], "segm")
    with pytest.raises(MetricsInputError, match="iou_type must be one of"):
        evaluate_coco([gt], [preds], "keypoints")  # type: ignore[arg-type]
    with pytest.raises(MetricsInputError, match="boxes_xyxy must be"):
        ImagePredictions(np.zeros((2, 5)), np.zeros(2), np.zeros(2))
    with pytest.raises(MetricsInputError, match="scores has 1 entries for 2 boxes"):
        ImagePredictions(np.zeros((2, 4)), np.zeros(1), np.zeros(2))
