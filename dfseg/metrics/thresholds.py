"""Precision, recall, F1 and true-positive IoU at confidence thresholds, and the best threshold.

Predictions are matched once, at one IoU threshold (default 0.5), greedily by descending score
within each image and class: each takes the free ground truth it overlaps most (COCO's rule, so a
ground truth is claimed by at most one prediction). Crowd ground truth is not an object: it is not
counted as missed, and a prediction that lands on it (and on no free object) is neither a true nor
a false positive. Because a prediction's outcome depends only on higher-scored ones, the outcome
at confidence threshold t is simply that of the predictions scored >= t; one matching serves every
threshold.
"""

from __future__ import annotations

import warnings
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

Average = Literal["micro", "macro"]
DEFAULT_THRESHOLDS = np.linspace(0.0, 1.0, 1001)
"""Confidence grid for curves and the threshold search (step 0.001)."""
F1_TIE_TOLERANCE = 1e-9


@dataclass
class Rates:
    """Precision, recall, F1 and mean IoU of true positives, all the same shape.

    Conventions: precision is 0 when nothing is predicted; recall is NaN for a class without
    ground truth; F1 is 0 when precision + recall is 0; mean IoU is NaN without true positives.
    """

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    mean_iou: np.ndarray


def _rates(tp: np.ndarray, fp: np.ndarray, num_gt: np.ndarray, iou_sum: np.ndarray) -> Rates:
    """Counts [..., S] (num_gt broadcastable) -> `Rates`."""
    with np.errstate(divide="ignore", invalid="ignore"):
        predicted = tp + fp
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
        recall = np.where(num_gt > 0, tp / np.maximum(num_gt, 1), np.nan)
        total = precision + recall
        f1 = np.where(total > 0, 2 * precision * recall / np.where(total > 0, total, 1), 0.0)
        f1 = np.where(np.isnan(recall), np.nan, f1)
        mean_iou = np.where(tp > 0, iou_sum / np.maximum(tp, 1), np.nan)
    return Rates(precision=precision, recall=recall, f1=f1, mean_iou=mean_iou)


@dataclass
class ThresholdMetrics:
    """Counts and rates per class at S confidence thresholds.

    Attributes:
        thresholds: [S] confidences (a prediction counts when score >= threshold).
        true_positives, false_positives: [C, S] int64.
        num_instances: [C] non-crowd ground truth per class.
        tp_iou_sum: [C, S] float64 sum of the IoU of the true positives.
    """

    thresholds: np.ndarray
    true_positives: np.ndarray
    false_positives: np.ndarray
    num_instances: np.ndarray
    tp_iou_sum: np.ndarray

    @property
    def false_negatives(self) -> np.ndarray:
        """[C, S] ground truth not found."""
        return self.num_instances[:, None] - self.true_positives

    @property
    def per_class(self) -> Rates:
        """Rates [C, S]."""
        return _rates(
            self.true_positives, self.false_positives, self.num_instances[:, None], self.tp_iou_sum
        )

    def overall(self, average: Average = "micro") -> Rates:
        """Rates [S] over all classes.

        "micro" pools the counts of all classes (every object weighs the same); "macro" averages
        the per-class rates over classes that have ground truth (every class weighs the same, as
        Ultralytics' mean P/R/F1).
        """
        if average == "micro":
            return _rates(
                self.true_positives.sum(0), self.false_positives.sum(0),
                self.num_instances.sum(), self.tp_iou_sum.sum(0),
            )  # fmt: skip
        if average != "macro":
            raise MetricsInputError(f"average must be 'micro' or 'macro', got {average!r}")
        rates = self.per_class
        present = self.num_instances > 0
        if not present.any():
            nan = np.full(len(self.thresholds), np.nan)
            return Rates(nan, nan, nan, nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # mean IoU of a column with no TP
            return Rates(
                *(np.nanmean(getattr(rates, name)[present], axis=0) for name in _RATE_NAMES)
            )


_RATE_NAMES = ("precision", "recall", "f1", "mean_iou")


@dataclass
class ConfidenceMatches:
    """Every prediction matched once at `iou_threshold`; evaluate at any confidence with `at`.

    Attributes:
        iou_type: "bbox" or "segm".
        iou_threshold: overlap needed for a true positive.
        num_instances: [C] non-crowd ground truth per class.
        image: [D] image position of each prediction; local_index: [D] its row there.
        labels: [D]; scores: [D] float64.
        is_true_positive: [D] bool; is_ignored: [D] bool (landed on a crowd region).
        iou: [D] float64 IoU with the matched ground truth (0 when unmatched).
        gt_local_index: [D] matched ground-truth row in its image, -1 when unmatched.
    """

    iou_type: str
    iou_threshold: float
    num_instances: np.ndarray
    image: np.ndarray
    local_index: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    is_true_positive: np.ndarray
    is_ignored: np.ndarray
    iou: np.ndarray
    gt_local_index: np.ndarray

    @property
    def num_classes(self) -> int:
        return len(self.num_instances)

    def at(
        self, thresholds: float | Sequence[float] | np.ndarray = DEFAULT_THRESHOLDS
    ) -> ThresholdMetrics:
        """Counts at each confidence threshold ([S], or a scalar for S = 1)."""
        grid = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))  # [S]
        shape = (self.num_classes, len(grid))
        tp, fp, iou_sum = np.zeros(shape, np.int64), np.zeros(shape, np.int64), np.zeros(shape)
        is_false_positive = ~self.is_true_positive & ~self.is_ignored
        for k in range(self.num_classes):
            of_class = self.labels == k
            tp[k], iou_sum[k] = _count_at_or_above(
                self.scores[of_class & self.is_true_positive], grid,
                self.iou[of_class & self.is_true_positive],
            )  # fmt: skip
            fp[k], _ = _count_at_or_above(self.scores[of_class & is_false_positive], grid)
        return ThresholdMetrics(grid, tp, fp, self.num_instances.copy(), iou_sum)


def _count_at_or_above(
    scores: np.ndarray, grid: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(count [S], weight sum [S]) of scores >= each grid value."""
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    below = np.searchsorted(sorted_scores, grid, side="left")  # [S]
    count = len(scores) - below
    if weights is None:
        return count, np.zeros(len(grid))
    suffix = np.r_[np.cumsum(weights[order][::-1])[::-1], 0.0]  # [n + 1]
    return count, suffix[below]


def match_for_thresholds(
    ground_truths: Sequence[ImageGroundTruth],
    predictions: Sequence[ImagePredictions | Detections],
    iou_type: IouType = "bbox",
    iou_threshold: float = 0.5,
    num_classes: int | None = None,
) -> ConfidenceMatches:
    """Match all predictions once (see module docstring) for threshold sweeps.

    Args:
        ground_truths: per image; predictions: per image, same order, unfiltered.
        iou_type: "bbox" for box metrics, "segm" for mask metrics.
        iou_threshold: overlap needed for a true positive.
        num_classes: C; None infers max label + 1.
    """
    iou_type = check_iou_type(iou_type)
    if not 0 < iou_threshold <= 1:
        raise MetricsInputError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    preds = as_predictions(predictions)
    num_classes = check_inputs(ground_truths, preds, num_classes)
    problem = flatten(ground_truths, preds, iou_type, iou_threshold, num_classes=num_classes)
    gt = problem.ground_truth
    match = greedy_match(
        len(problem.predictions), problem.predictions.group, problem.pairs, gt.crowd, gt.crowd,
        np.array([iou_threshold]),
    )  # fmt: skip
    gt_index = match.gt_index[0, 0]  # [D]
    matched = gt_index >= 0
    on_crowd = gather_matched(gt.crowd, gt_index, False)  # [D]
    dets = problem.predictions
    return ConfidenceMatches(
        iou_type=iou_type,
        iou_threshold=iou_threshold,
        num_instances=np.bincount(gt.labels[~gt.crowd], minlength=num_classes),
        image=dets.image,
        local_index=dets.local_index,
        labels=dets.labels,
        scores=dets.scores,
        is_true_positive=matched & ~on_crowd,
        is_ignored=on_crowd,
        iou=np.where(matched & ~on_crowd, match.iou[0, 0], 0.0),
        gt_local_index=gather_matched(gt.local_index, gt_index, -1),
    )


@dataclass
class BestThreshold:
    """The F1-maximising confidence threshold and the metrics there.

    Attributes:
        threshold: the chosen confidence.
        average: how classes were combined for the F1 that was maximised.
        metrics: counts per class at that threshold (S = 1).
        overall: pooled or averaged rates there (shape [1]).
        found: whether any threshold gives F1 > 0. A model that has matched no object yet has
            F1 0 everywhere; then `threshold` is the fallback given to `best_threshold`, not a
            maximum of anything.
    """

    threshold: float
    average: Average
    metrics: ThresholdMetrics
    overall: Rates
    found: bool = True

    @property
    def f1(self) -> float:
        return float(self.overall.f1[0])


def best_threshold(
    matches: ConfidenceMatches,
    thresholds: Sequence[float] | np.ndarray = DEFAULT_THRESHOLDS,
    average: Average = "micro",
    fallback: float = 0.5,
) -> BestThreshold:
    """The confidence that maximises overall F1 (`fallback` when F1 is 0 at every threshold).

    Pass matches computed with iou_type "bbox" for a detector and "segm" for a segmentation model
    (mask F1). F1 is flat between consecutive prediction scores; the middle of the lowest best
    plateau on the grid is returned so that small score drifts (quantisation, another backend)
    do not cross a prediction, and of equal peaks the lower threshold (more recall) wins.

    Args:
        matches: from `match_for_thresholds`.
        thresholds: [S] ascending candidate confidences.
        average: "micro" (pooled counts) or "macro" (mean over classes with ground truth).
        fallback: the threshold returned, with `found` False, when no threshold has F1 > 0.
    """
    grid = np.asarray(thresholds, dtype=np.float64)
    if grid.ndim != 1 or len(grid) == 0 or (np.diff(grid) <= 0).any():
        raise MetricsInputError("thresholds must be a non-empty ascending 1-D sequence")
    f1 = np.nan_to_num(matches.at(grid).overall(average).f1, nan=-1.0)  # [S]
    if f1.max() <= 0:
        metrics = matches.at(fallback)
        return BestThreshold(fallback, average, metrics, metrics.overall(average), found=False)
    # Equal F1 computed along different paths can differ in the last bits; treat as equal.
    at_peak = f1 >= f1.max() - F1_TIE_TOLERANCE  # [S]
    first = int(np.argmax(at_peak))
    last = first
    while last + 1 < len(grid) and at_peak[last + 1]:
        last += 1
    threshold = float(grid[(first + last) // 2])
    metrics = matches.at(threshold)
    return BestThreshold(threshold, average, metrics, metrics.overall(average))
