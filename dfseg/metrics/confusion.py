"""Detection confusion matrix with a background class, Ultralytics layout.

Predictions scored >= the confidence threshold are matched class-agnostically to ground truth of
the same image at IoU >= the IoU threshold (greedy by descending score, each taking the free
ground truth it overlaps most), so a box with the wrong class shows up as a confusion between two
classes. Layout: rows are *predicted* classes, columns are *true* classes, the last row/column is
background: a false positive lands in the background column of its predicted class, a missed
object in the background row of its true class. Crowd regions are not objects; predictions that
fall on them are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from dfseg.metrics.collect import flatten
from dfseg.metrics.errors import MetricsInputError
from dfseg.metrics.inputs import ImageGroundTruth, ImagePredictions, as_predictions, check_inputs
from dfseg.metrics.iou import IouType, check_iou_type
from dfseg.metrics.matching import gather_matched, greedy_match
from dfseg.structures.detections import Detections

NormalizeOver = Literal["true", "predicted"]


@dataclass
class ConfusionMatrix:
    """Counts [C + 1, C + 1] int64: rows predicted class, columns true class, index C background.

    Attributes:
        counts: the matrix.
        confidence_threshold: predictions below it were dropped.
        iou_threshold: overlap needed to pair a prediction with an object.
    """

    counts: np.ndarray
    confidence_threshold: float
    iou_threshold: float

    @property
    def num_classes(self) -> int:
        return len(self.counts) - 1

    def normalized(self, over: NormalizeOver = "true") -> np.ndarray:
        """[C + 1, C + 1] float64 fractions; all-zero lines stay zero.

        Args:
            over: "true" divides each column by its total (where the objects of a class went,
                Ultralytics' normalised plot); "predicted" divides each row by its total (what a
                prediction of a class really was).
        """
        counts = self.counts.astype(np.float64)
        if over == "true":
            totals = counts.sum(axis=0, keepdims=True)
        elif over == "predicted":
            totals = counts.sum(axis=1, keepdims=True)
        else:
            raise MetricsInputError(f"over must be 'true' or 'predicted', got {over!r}")
        return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)

    @property
    def true_positives(self) -> np.ndarray:
        """[C] diagonal (right class, overlapping an object)."""
        return np.diag(self.counts)[:-1]

    @property
    def false_positives(self) -> np.ndarray:
        """[C] predictions of each class that are not that class (background or another)."""
        return self.counts[:-1].sum(axis=1) - self.true_positives

    @property
    def false_negatives(self) -> np.ndarray:
        """[C] objects of each class not predicted as that class."""
        return self.counts[:, :-1].sum(axis=0) - self.true_positives


def confusion_matrix(
    ground_truths: Sequence[ImageGroundTruth],
    predictions: Sequence[ImagePredictions | Detections],
    num_classes: int | None = None,
    confidence_threshold: float = 0.25,
    iou_threshold: float = 0.5,
    iou_type: IouType = "bbox",
) -> ConfusionMatrix:
    """Build the matrix over a dataset.

    Args:
        ground_truths: per image; predictions: per image, same order.
        num_classes: C; None infers max label + 1.
        confidence_threshold: keep predictions with score >= this.
        iou_threshold: overlap needed to pair (boxes, or masks for "segm").
        iou_type: "bbox" or "segm".
    """
    iou_type = check_iou_type(iou_type)
    if not 0 < iou_threshold <= 1:
        raise MetricsInputError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    preds = as_predictions(predictions)
    num_classes = check_inputs(ground_truths, preds, num_classes)
    problem = flatten(
        ground_truths, preds, iou_type, iou_threshold, num_classes=num_classes,
        class_agnostic=True, min_score=confidence_threshold,
    )  # fmt: skip
    gt, dets = problem.ground_truth, problem.predictions
    match = greedy_match(
        len(dets), dets.group, problem.pairs, gt.crowd, gt.crowd, np.array([iou_threshold])
    )
    gt_index = match.gt_index[0, 0]  # [D]
    matched = gt_index >= 0
    on_crowd = gather_matched(gt.crowd, gt_index, False)  # [D]
    background = num_classes
    counts = np.zeros((num_classes + 1, num_classes + 1), np.int64)
    pair = matched & ~on_crowd
    np.add.at(counts, (dets.labels[pair], gt.labels[gt_index[pair]]), 1)
    np.add.at(counts, (dets.labels[~matched], background), 1)
    found = np.zeros(len(gt), bool)
    found[gt_index[pair]] = True
    missed = ~found & ~gt.crowd
    np.add.at(counts, (background, gt.labels[missed]), 1)
    return ConfusionMatrix(counts, confidence_threshold, iou_threshold)
