"""Semantic metrics: a case computed by hand, random cases against a per-class reference, the NaN
rules, accumulation and merging, refused input, the report's rows and JSON, the plot."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest

from dfseg.metrics.errors import MetricsInputError
from dfseg.metrics.semantic import (
    IGNORE_INDEX,
    SemanticAccumulator,
    SemanticReport,
    build_semantic_report,
    plot_semantic_confusion,
    semantic_confusion,
)

NAMES = ["road", "car", "sky"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Labels (255: ignored) and predictions of one 4x4 image; the ignored pixels are predicted
# 0, 1 and 2, so counting any of them would change the numbers below.
HAND_TARGET = np.array(
    [[0, 0, 0, 1], [0, 0, 1, 1], [2, 2, 255, 1], [2, 255, 255, 1]], dtype=np.uint8
)
HAND_PRED = np.array([[0, 0, 1, 1], [0, 2, 1, 1], [2, 0, 0, 1], [2, 1, 2, 2]])
# By hand: rows labelled, columns predicted. 13 labelled pixels (5 road, 5 car, 3 sky), 9 right.
HAND_CONFUSION = [[3, 1, 1], [0, 4, 1], [1, 0, 2]]


def test_semantic_confusion_of_a_hand_computed_image() -> None:
    confusion = semantic_confusion(HAND_PRED, HAND_TARGET, 3)
    assert confusion.dtype == np.int64
    assert confusion.tolist() == HAND_CONFUSION


def test_report_of_a_hand_computed_image() -> None:
    report = build_semantic_report(np.array(HAND_CONFUSION), NAMES, images=1, class_images=[1] * 3)
    # road: TP 3, labelled 5, predicted 4; car: 4, 5, 5; sky: 2, 3, 4
    assert [row.iou for row in report.classes] == pytest.approx([3 / 6, 4 / 6, 2 / 5])
    assert [row.accuracy for row in report.classes] == pytest.approx([3 / 5, 4 / 5, 2 / 3])
    assert [row.precision for row in report.classes] == pytest.approx([3 / 4, 4 / 5, 2 / 4])
    assert [row.gt_pixels for row in report.classes] == [5, 5, 3]
    assert [row.pixel_share for row in report.classes] == pytest.approx([5 / 13, 5 / 13, 3 / 13])
    assert report.miou == pytest.approx(47 / 90)
    assert report.mpa == pytest.approx(31 / 45)
    assert report.mean_precision == pytest.approx(41 / 60)
    assert report.pixel_accuracy == pytest.approx(9 / 13)
    assert report.fwiou == pytest.approx(211 / 390)
    assert report.images == 1 and [row.images for row in report.classes] == [1, 1, 1]
    assert report.confusion == HAND_CONFUSION


def _random_images(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(pred, target) pairs of varied sizes over 5 classes: labels use 0..2 and 255, class 3 is
    only ever predicted, class 4 appears nowhere."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(5):
        shape = (int(rng.integers(3, 12)), int(rng.integers(3, 12)))
        target = rng.choice([0, 0, 1, 2, IGNORE_INDEX], size=shape)
        noise = rng.choice([0, 1, 2, 3], size=shape)
        pred = np.where(rng.random(shape) < 0.6, np.where(target == IGNORE_INDEX, 3, target), noise)
        images.append((pred, target))
    return images


def _reference(images: list[tuple[np.ndarray, np.ndarray]], num_classes: int) -> dict:
    """Per-class boolean counting over all labelled pixels, written independently of bincount."""
    pred = np.concatenate([p.ravel() for p, _ in images])
    target = np.concatenate([t.ravel() for _, t in images])
    keep = target != IGNORE_INDEX
    pred, target = pred[keep], target[keep]
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    iou, accuracy, precision, share = [], [], [], []
    for c in range(num_classes):
        is_true, is_pred = target == c, pred == c
        for d in range(num_classes):
            confusion[c, d] = int(np.sum(is_true & (pred == d)))
        both, either = int(np.sum(is_true & is_pred)), int(np.sum(is_true | is_pred))
        iou.append(both / either if either else math.nan)
        accuracy.append(both / is_true.sum() if is_true.sum() else math.nan)
        precision.append(both / is_pred.sum() if is_pred.sum() else math.nan)
        share.append(is_true.sum() / target.size)
    fwiou = sum(s * i for s, i in zip(share, iou, strict=True) if s > 0)
    return {
        "confusion": confusion, "iou": iou, "accuracy": accuracy, "precision": precision,
        "miou": np.nanmean(iou), "mpa": np.nanmean(accuracy), "mprec": np.nanmean(precision),
        "pixel_accuracy": float(np.mean(pred == target)), "fwiou": fwiou,
        "class_images": [sum(bool((t == c).any()) for _, t in images) for c in range(num_classes)],
    }  # fmt: skip


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_images_match_a_per_class_reference(seed: int) -> None:
    images = _random_images(seed)
    accumulator = SemanticAccumulator(5)
    for pred, target in images:
        accumulator.update(pred, target)
    report = accumulator.report([f"c{i}" for i in range(5)])
    expected = _reference(images, 5)
    assert np.array_equal(report.confusion_array(), expected["confusion"])
    np.testing.assert_allclose([r.iou for r in report.classes], expected["iou"])
    np.testing.assert_allclose([r.accuracy for r in report.classes], expected["accuracy"])
    np.testing.assert_allclose([r.precision for r in report.classes], expected["precision"])
    assert report.miou == pytest.approx(expected["miou"])
    assert report.mpa == pytest.approx(expected["mpa"])
    assert report.mean_precision == pytest.approx(expected["mprec"])
    assert report.pixel_accuracy == pytest.approx(expected["pixel_accuracy"])
    assert report.fwiou == pytest.approx(expected["fwiou"])
    assert [r.images for r in report.classes] == expected["class_images"]
    assert report.images == len(images)
    assert report.classes[3].iou == 0.0 and math.isnan(report.classes[3].accuracy)
    assert math.isnan(report.classes[4].iou)


def test_the_ignore_index_is_the_one_of_the_semantic_labels() -> None:
    from dfseg.ops.semantic import IGNORE_INDEX as LABEL_IGNORE_INDEX  # imports torch

    assert IGNORE_INDEX == LABEL_IGNORE_INDEX


def test_a_class_absent_everywhere_is_left_out_of_the_means() -> None:
    target = np.array([[0, 0], [1, 1]])
    pred = np.array([[0, 1], [1, 1]])
    report = build_semantic_report(semantic_confusion(pred, target, 3), NAMES, 1)
    sky = report.classes[2]
    assert math.isnan(sky.iou) and math.isnan(sky.accuracy) and math.isnan(sky.precision)
    assert report.miou == pytest.approx((1 / 2 + 2 / 3) / 2)  # not divided by 3
    assert report.mpa == pytest.approx((1 / 2 + 1) / 2)
    assert report.mean_precision == pytest.approx((1 + 2 / 3) / 2)


def test_a_predicted_but_unlabelled_class_has_zero_iou_and_no_accuracy() -> None:
    target = np.array([[0, 0], [0, 0]])
    pred = np.array([[0, 1], [0, 0]])
    report = build_semantic_report(semantic_confusion(pred, target, 3), NAMES, 1)
    car = report.classes[1]
    assert car.iou == 0.0 and car.precision == 0.0 and math.isnan(car.accuracy)
    assert report.miou == pytest.approx((3 / 4 + 0.0) / 2)  # the 0 counts, sky (NaN) does not
    assert report.mpa == pytest.approx(3 / 4)
    assert report.fwiou == pytest.approx(3 / 4)


def test_nothing_labelled_gives_nan_everywhere() -> None:
    report = build_semantic_report(np.zeros((3, 3), np.int64), NAMES, 0)
    assert all(math.isnan(v) for v in report.to_row().values())
    assert all(math.isnan(row.pixel_share) for row in report.classes)


def test_updating_image_by_image_equals_one_confusion_over_all_pixels() -> None:
    images = _random_images(7)
    accumulator = SemanticAccumulator(5)
    for pred, target in images:
        accumulator.update(pred, target)
    whole = semantic_confusion(
        np.concatenate([p.ravel() for p, _ in images]),
        np.concatenate([t.ravel() for _, t in images]),
        5,
    )
    assert np.array_equal(accumulator.confusion, whole)
    assert accumulator.images == len(images)


def test_merging_shards_equals_one_accumulator_over_all_images() -> None:
    images = _random_images(11)
    whole, first, second = SemanticAccumulator(5), SemanticAccumulator(5), SemanticAccumulator(5)
    for index, (pred, target) in enumerate(images):
        whole.update(pred, target)
        (first if index % 2 else second).update(pred, target)
    first.merge(second)
    assert np.array_equal(first.confusion, whole.confusion)
    assert first.images == whole.images == len(images)
    assert first.class_images.tolist() == whole.class_images.tolist()
    names = [f"c{i}" for i in range(5)]
    assert first.report(names).model_dump_json() == whole.report(names).model_dump_json()


def test_an_accumulator_survives_pickling_as_ranks_gather_it() -> None:
    accumulator = SemanticAccumulator(3)
    accumulator.update(HAND_PRED, HAND_TARGET)
    copy = pickle.loads(pickle.dumps(accumulator))
    copy.merge(accumulator)
    assert copy.confusion.tolist() == (2 * np.array(HAND_CONFUSION)).tolist()
    assert copy.images == 2 and copy.class_images.tolist() == [2, 2, 2]


def test_class_images_count_images_whose_labels_hold_the_class() -> None:
    accumulator = SemanticAccumulator(3)
    accumulator.update(np.array([[2, 2]]), np.array([[0, 0]]))  # sky predicted, not labelled
    accumulator.update(np.array([[0, 1]]), np.array([[0, 1]]))
    accumulator.update(np.array([[2, 2]]), np.array([[IGNORE_INDEX, IGNORE_INDEX]]))
    assert accumulator.class_images.tolist() == [2, 1, 0]
    assert [row.images for row in accumulator.report(NAMES).classes] == [2, 1, 0]
    assert accumulator.report(NAMES).images == 3


def test_merging_accumulators_of_other_classes_is_refused() -> None:
    with pytest.raises(MetricsInputError, match="3 classes"):
        SemanticAccumulator(3).merge(SemanticAccumulator(4))
    with pytest.raises(MetricsInputError, match="ignore 0"):
        SemanticAccumulator(3).merge(SemanticAccumulator(3, ignore_index=0))


@pytest.mark.parametrize(
    ("pred", "target", "message"),
    [
        (np.zeros((2, 2), int), np.zeros((2, 3), int), r"\(2, 2\).*\(2, 3\).*shape"),
        (np.full((2, 2), 7), np.zeros((2, 2), int), "prediction value 7 "),
        (np.array([[0, -1]]), np.array([[0, 0]]), "prediction value -1 "),
        (np.array([[0, 5]]), np.array([[0, IGNORE_INDEX]]), "prediction value 5 "),  # ignored too
        (np.zeros((2, 2), int), np.full((2, 2), 9), "label value 9 "),
        (np.zeros((1, 2), int), np.array([[-3, 0]]), "label value -3 "),
        (np.zeros((2, 2)), np.zeros((2, 2), int), "integer class indices, got float64"),
    ],
)
def test_bad_maps_are_refused_naming_the_value(
    pred: np.ndarray, target: np.ndarray, message: str
) -> None:
    with pytest.raises(MetricsInputError, match=message):
        semantic_confusion(pred, target, 3)


def test_another_ignore_index_is_left_out_and_255_becomes_an_error() -> None:
    pred, target = np.array([[0, 1, 2]]), np.array([[0, 1, 0]])
    assert semantic_confusion(pred, target, 3, ignore_index=0).tolist() == [
        [0, 0, 0], [0, 1, 0], [0, 0, 0],
    ]  # fmt: skip
    with pytest.raises(MetricsInputError, match=r"label value 255 .*nor ignore \(0\)"):
        semantic_confusion(pred, np.array([[255, 1, 1]]), 3, ignore_index=0)


def test_reports_of_mismatched_inputs_are_refused() -> None:
    with pytest.raises(MetricsInputError, match="2 class names"):
        build_semantic_report(np.zeros((3, 3), np.int64), ["a", "b"], 1)
    with pytest.raises(MetricsInputError, match="negative"):
        build_semantic_report(-np.eye(3, dtype=np.int64), NAMES, 1)
    with pytest.raises(MetricsInputError, match="2 per-class image counts"):
        build_semantic_report(np.zeros((3, 3), np.int64), NAMES, 1, class_images=[1, 1])


def test_to_row_class_table_and_score() -> None:
    report = build_semantic_report(np.array(HAND_CONFUSION), NAMES, images=1, class_images=[1] * 3)
    row = report.to_row()
    assert list(row) == [
        "metrics/mIoU", "metrics/mPA", "metrics/mPrecision", "metrics/pixel_acc", "metrics/fwIoU",
    ]  # fmt: skip
    assert list(row.values()) == pytest.approx([47 / 90, 31 / 45, 41 / 60, 9 / 13, 211 / 390])
    table = report.class_table()
    assert table[0] == {
        "class": "all", "images": 1, "gt_pixels": 13, "pixel_share": 1.0,
        "iou": report.miou, "accuracy": report.mpa, "precision": report.mean_precision,
    }  # fmt: skip
    assert [r["class"] for r in table[1:]] == NAMES
    assert all(list(r) == list(table[0]) for r in table)
    assert table[3]["iou"] == pytest.approx(2 / 5) and table[3]["gt_pixels"] == 3
    assert report.score("miou") == pytest.approx(47 / 90)
    assert report.score("mpa") == pytest.approx(31 / 45)
    assert report.score("pixel_acc") == pytest.approx(9 / 13)
    with pytest.raises(ValueError, match="map50"):
        report.score("map50")


def test_an_undefined_score_counts_as_zero() -> None:
    empty = build_semantic_report(np.zeros((3, 3), np.int64), NAMES, 0)
    assert math.isnan(empty.miou)
    assert empty.score("miou") == 0.0 and empty.score("pixel_acc") == 0.0


def test_json_round_trip_keeps_nan_and_the_confusion() -> None:
    target = np.array([[0, 0], [0, 0]])
    report = build_semantic_report(
        semantic_confusion(np.array([[0, 1], [0, 0]]), target, 3), NAMES, 1, [1, 0, 0]
    )
    again = SemanticReport.model_validate_json(report.model_dump_json())
    assert again.task == "semantic"
    assert math.isnan(again.classes[2].iou) and math.isnan(again.classes[1].accuracy)
    assert again.miou == pytest.approx(report.miou)
    assert again.model_dump_json() == report.model_dump_json()
    matrix = again.confusion_array()
    assert matrix.dtype == np.int64 and matrix.tolist() == [[3, 1, 0], [0, 0, 0], [0, 0, 0]]


@pytest.mark.parametrize("normalize", [True, False])
def test_plot_writes_a_png(tmp_path: Path, normalize: bool) -> None:
    report = build_semantic_report(np.array(HAND_CONFUSION), NAMES, images=1)
    path = plot_semantic_confusion(report, tmp_path / "plots" / "confusion.png", normalize)
    assert path == tmp_path / "plots" / "confusion.png"
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 1000
