"""Confusion matrix with a background row/column on a hand-built scene."""

from __future__ import annotations

import numpy as np
import pytest

from dfseg.metrics import ImageGroundTruth, ImagePredictions, MetricsInputError, confusion_matrix


def _scene() -> tuple[list[ImageGroundTruth], list[ImagePredictions]]:
    """Objects: A c0 [0,0,10,10], B c1 [20,0,30,10], C c1 [40,0,50,10]; crowd c0 [0,50,50,100].

    p1 c0 on A .9 -> (pred 0, true 0)      p2 c0 on B .8 -> (pred 0, true 1)
    p3 c1 on nothing .7 -> (pred 1, bg)    p4 c1 inside the crowd .6 -> left out
    p5 c0 on A again .5 -> (pred 0, bg)    p6 c1 on C .1 -> below conf: C missed -> (bg, true 1)
    """
    gt = ImageGroundTruth(
        np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [0, 50, 50, 100]], float),
        np.array([0, 1, 1, 0]),
        iscrowd=np.array([False, False, False, True]),
    )
    pred = ImagePredictions(
        np.array(
            [
                [0, 0, 10, 10],
                [20, 0, 30, 10],
                [60, 60, 70, 70],
                [5, 60, 15, 70],
                [0, 0, 10, 11],
                [40, 0, 50, 10],
            ],
            float,
        ),
        np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.1]),
        np.array([0, 0, 1, 1, 0, 1]),
    )
    return [gt], [pred]


def test_counts_layout_rows_predicted_columns_true() -> None:
    matrix = confusion_matrix(*_scene(), num_classes=2, confidence_threshold=0.25)
    assert matrix.counts.tolist() == [
        [1, 1, 1],  # predicted class 0: right, confused with class 1, false positive
        [0, 0, 1],  # predicted class 1: one false positive
        [0, 1, 0],  # background: one class-1 object missed
    ]
    assert matrix.true_positives.tolist() == [1, 0]
    assert matrix.false_positives.tolist() == [2, 1]
    assert matrix.false_negatives.tolist() == [0, 2]


def test_normalisation_over_true_and_predicted() -> None:
    matrix = confusion_matrix(*_scene(), num_classes=2)
    over_true = matrix.normalized("true")
    np.testing.assert_allclose(over_true[:, 1], [0.5, 0.0, 0.5])
    np.testing.assert_allclose(over_true.sum(axis=0), [1.0, 1.0, 1.0])
    over_predicted = matrix.normalized("predicted")
    np.testing.assert_allclose(over_predicted[0], [1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(over_predicted.sum(axis=1), [1.0, 1.0, 1.0])
    with pytest.raises(MetricsInputError, match="over must be"):
        matrix.normalized("rows")  # type: ignore[arg-type]


def test_lower_threshold_recovers_the_missed_object() -> None:
    matrix = confusion_matrix(*_scene(), num_classes=2, confidence_threshold=0.05)
    assert matrix.counts[1, 1] == 1  # p6 now finds C
    assert matrix.counts[2, 1] == 0


def test_empty_dataset_gives_zero_matrix() -> None:
    gt = ImageGroundTruth(np.zeros((0, 4)), np.zeros(0))
    pred = ImagePredictions(np.zeros((0, 4)), np.zeros(0), np.zeros(0))
    matrix = confusion_matrix([gt], [pred], num_classes=3)
    assert matrix.counts.shape == (4, 4)
    assert matrix.counts.sum() == 0
    assert (matrix.normalized() == 0).all()
