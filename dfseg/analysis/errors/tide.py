"""TIDE error classification (Bolya et al., ECCV 2020): why each prediction is not a true positive
and which objects were missed.

Predictions are matched to ground truth as COCO does at one IoU threshold t_f (`pos`), per image
and class, greedily by score. Every unmatched prediction then gets exactly one type, tested in
TIDE's order (`tidecv/quantify.py`), with t_b (`background`, 0.1) the background threshold:

1. localization: its best same-class overlap (any object, found or not) is in [t_b, t_f);
2. classification: it overlaps an object of another class by >= t_f;
3. duplicate: it overlaps an already found same-class object by >= t_f;
4. background: it overlaps no object by more than t_b;
5. both: anything else (wrong class and poorly localised).

An object nobody found is `missed`, unless a classification or localization error points at it
(TIDE's "usable" ground truth): fixing that error finds it, so it is not counted twice. Crowd
regions are not objects: predictions on them are ignored, as in COCO.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from dfseg.analysis.exceptions import AnalysisError
from dfseg.metrics import (
    ConfidenceMatches,
    ImageGroundTruth,
    ImagePredictions,
    image_iou,
    match_for_thresholds,
)

ErrorType = Literal["classification", "localization", "both", "duplicate", "background", "missed"]
ERROR_TYPES: tuple[ErrorType, ...] = (
    "classification", "localization", "both", "duplicate", "background", "missed",
)  # fmt: skip
"""TIDE's main error types, in its order."""

PREDICTION_OUTCOMES = (
    "true_positive", "ignored", "classification", "localization", "both", "duplicate", "background",
)  # fmt: skip
"""Codes of `ErrorCases.pred_outcome` (index into this tuple)."""

GROUND_TRUTH_OUTCOMES = ("found", "missed", "attributed", "crowd")
"""Codes of `ErrorCases.gt_outcome`: found by a true positive; missed; not found but blamed on a
classification/localization error that points at it; a crowd region (not an object)."""

TRUE_POSITIVE, IGNORED = 0, 1
CLASSIFICATION, LOCALIZATION, BOTH, DUPLICATE, BACKGROUND = 2, 3, 4, 5, 6
FOUND, MISSED, ATTRIBUTED, CROWD = 0, 1, 2, 3
DEFAULT_BACKGROUND_THRESHOLD = 0.1


@dataclass
class ErrorCases:
    """The TIDE outcome of every prediction and every ground-truth instance of a dataset.

    Predictions are listed per image, then per class by descending score (the matching order).

    Attributes:
        iou_type: "bbox" or "segm" (the overlap the classification used).
        iou_threshold: t_f, overlap needed for a true positive.
        background_threshold: t_b.
        pred_image: [D] image position; pred_row: [D] row in that image's predictions.
        pred_label: [D]; pred_score: [D] float64.
        pred_outcome: [D] code into `PREDICTION_OUTCOMES`.
        pred_target: [D] ground-truth row (in its image) the outcome refers to: the matched
            object of a true positive, the object of a classification/localization/duplicate
            error, the most overlapping object for "both"; -1 otherwise.
        pred_target_iou: [D] overlap with that object (0 without one).
        gt_image: [G] image position; gt_row: [G] row in that image's ground truth.
        gt_label: [G]; gt_outcome: [G] code into `GROUND_TRUTH_OUTCOMES`.
        gt_fixed_by: [G] flat prediction index of the highest-scored classification or
            localization error pointing at this (unfound) object, -1 if none. Fixing that error
            type turns exactly this prediction into a true positive (TIDE's `BestGTMatch`).
    """

    iou_type: str
    iou_threshold: float
    background_threshold: float
    pred_image: np.ndarray
    pred_row: np.ndarray
    pred_label: np.ndarray
    pred_score: np.ndarray
    pred_outcome: np.ndarray
    pred_target: np.ndarray
    pred_target_iou: np.ndarray
    gt_image: np.ndarray
    gt_row: np.ndarray
    gt_label: np.ndarray
    gt_outcome: np.ndarray
    gt_fixed_by: np.ndarray

    def error_mask(self, error_type: str) -> np.ndarray:
        """[D] predictions of this type, or [G] objects for "missed"."""
        if error_type == "missed":
            return self.gt_outcome == MISSED
        return self.pred_outcome == PREDICTION_OUTCOMES.index(error_type)

    def counts(self) -> dict[str, int]:
        """Number of cases of each error type."""
        return {t: int(self.error_mask(t).sum()) for t in ERROR_TYPES}

    @property
    def false_positive(self) -> np.ndarray:
        """[D] bool: neither a true positive nor ignored."""
        return self.pred_outcome >= CLASSIFICATION

    @property
    def false_negative(self) -> np.ndarray:
        """[G] bool: objects no prediction found (missed or attributed)."""
        return (self.gt_outcome == MISSED) | (self.gt_outcome == ATTRIBUTED)

    @property
    def becomes_true_positive(self) -> np.ndarray:
        """[D] bool: the classification/localization errors that fixing their type turns into
        true positives (one per unfound object they point at); fixing removes the others."""
        chosen = np.zeros(len(self.pred_outcome), bool)
        chosen[self.gt_fixed_by[self.gt_fixed_by >= 0]] = True
        return chosen


def classify_errors(
    ground_truths: Sequence[ImageGroundTruth],
    predictions: Sequence[ImagePredictions],
    iou_type: Literal["bbox", "segm"] = "bbox",
    iou_threshold: float = 0.5,
    background_threshold: float = DEFAULT_BACKGROUND_THRESHOLD,
    num_classes: int | None = None,
) -> ErrorCases:
    """Classify every prediction and object of a dataset, TIDE style (see the module docstring).

    Args:
        ground_truths: per image (boxes xyxy absolute pixels, labels, crowd flags, masks for
            "segm").
        predictions: per image, same order; all of them are classified (filter by confidence
            first to look at what a deployed model shows).
        iou_type: "bbox" or "segm".
        iou_threshold: t_f in (0, 1].
        background_threshold: t_b, below t_f.
        num_classes: C; None infers max label + 1.

    Returns:
        The outcome of every prediction and object.
    """
    if not 0 <= background_threshold < iou_threshold:
        raise AnalysisError(
            f"background_threshold ({background_threshold}) must be in [0, iou_threshold "
            f"({iou_threshold}))"
        )
    matches = match_for_thresholds(ground_truths, predictions, iou_type, iou_threshold, num_classes)
    outcome = np.where(matches.is_true_positive, TRUE_POSITIVE, -1)  # [D]
    outcome[matches.is_ignored] = IGNORED
    target = np.where(matches.is_true_positive, matches.gt_local_index, -1)  # [D]
    target_iou = matches.iou.copy()  # [D]
    # Predictions are listed image by image, so each image's are one contiguous range.
    bounds = np.searchsorted(matches.image, np.arange(len(ground_truths) + 1))
    for image, (gt, pred) in enumerate(zip(ground_truths, predictions, strict=True)):
        in_image = np.arange(bounds[image], bounds[image + 1])  # [d]
        unmatched = in_image[outcome[in_image] < 0]  # [u]
        if len(unmatched) == 0:
            continue
        found = np.zeros(len(gt), bool)
        found[target[in_image][target[in_image] >= 0]] = True
        rows = matches.local_index[unmatched]
        ious = image_iou(gt, pred, iou_type, rows) if len(gt) else np.zeros((len(rows), 0))
        codes, targets, overlaps = _classify_false_positives(
            ious, pred.labels[rows], gt.labels, gt.crowd, found,
            iou_threshold, background_threshold,
        )  # fmt: skip
        outcome[unmatched], target[unmatched], target_iou[unmatched] = codes, targets, overlaps
    return _with_ground_truth_outcomes(
        ground_truths, matches, outcome, target, target_iou, background_threshold
    )


def _classify_false_positives(
    ious: np.ndarray,
    pred_labels: np.ndarray,
    gt_labels: np.ndarray,
    gt_crowd: np.ndarray,
    gt_found: np.ndarray,
    pos: float,
    background: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TIDE's tests for the unmatched predictions of one image.

    Args:
        ious: [u, N] overlap with every ground truth of the image.
        pred_labels: [u]; gt_labels: [N]; gt_crowd: [N] bool; gt_found: [N] bool (matched).
        pos, background: t_f and t_b.

    Returns:
        (outcome codes [u], target ground-truth rows [u] (-1 none), target overlaps [u]).
    """
    count = len(pred_labels)
    if not (~gt_crowd).any():  # no objects: everything is background
        return np.full(count, BACKGROUND), np.full(count, -1), np.zeros(count)
    objects = np.where(gt_crowd[None, :], 0.0, ious)  # [u, N] crowd columns are not objects
    same_class = pred_labels[:, None] == gt_labels[None, :]  # [u, N]
    same = np.where(same_class, objects, 0.0)  # [u, N]
    other = np.where(same_class, 0.0, objects)  # [u, N]
    same_found = np.where(gt_found[None, :], same, 0.0)  # [u, N]
    rows = np.arange(count)
    best_same, best_other = same.argmax(1), other.argmax(1)  # [u]
    best_found, best_any = same_found.argmax(1), objects.argmax(1)  # [u]
    localization = (same[rows, best_same] >= background) & (same[rows, best_same] < pos)
    classification = ~localization & (other[rows, best_other] >= pos)
    undecided = ~localization & ~classification
    duplicate = undecided & (same_found[rows, best_found] >= pos)
    background_error = undecided & ~duplicate & (objects[rows, best_any] <= background)
    outcome = np.full(count, BOTH)
    target = best_any.copy()
    for mask, code, index in (
        (localization, LOCALIZATION, best_same),
        (classification, CLASSIFICATION, best_other),
        (duplicate, DUPLICATE, best_found),
    ):
        outcome[mask], target[mask] = code, index[mask]
    outcome[background_error], target[background_error] = BACKGROUND, -1
    overlap = np.where(target >= 0, objects[rows, np.maximum(target, 0)], 0.0)
    return outcome, target, overlap


def _with_ground_truth_outcomes(
    ground_truths: Sequence[ImageGroundTruth],
    matches: ConfidenceMatches,
    outcome: np.ndarray,
    target: np.ndarray,
    target_iou: np.ndarray,
    background_threshold: float,
) -> ErrorCases:
    """Derive each object's outcome and which error would find it when fixed."""
    counts = [len(gt) for gt in ground_truths]
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)  # [I + 1]
    gt_crowd = np.concatenate([gt.crowd for gt in ground_truths] + [np.zeros(0, bool)])  # [G]
    gt_outcome = np.where(gt_crowd, CROWD, MISSED)  # [G]
    flat_target = np.where(target >= 0, offsets[matches.image] + target, -1)  # [D]
    gt_outcome[flat_target[outcome == TRUE_POSITIVE]] = FOUND
    fixable = ((outcome == CLASSIFICATION) | (outcome == LOCALIZATION)) & (flat_target >= 0)
    fixable &= gt_outcome[np.maximum(flat_target, 0)] == MISSED  # pointing at an unfound object
    candidates = np.flatnonzero(fixable)
    # Highest score wins; ties go to the earlier prediction row (TIDE's score-sorted order).
    order = np.lexsort(
        (matches.local_index[candidates], -matches.scores[candidates], flat_target[candidates])
    )
    ranked = candidates[order]
    first = np.r_[True, flat_target[ranked][1:] != flat_target[ranked][:-1]][: len(ranked)]
    gt_fixed_by = np.full(len(gt_outcome), -1, np.int64)
    gt_fixed_by[flat_target[ranked[first]]] = ranked[first]
    gt_outcome[gt_fixed_by >= 0] = ATTRIBUTED
    return ErrorCases(
        iou_type=matches.iou_type,
        iou_threshold=matches.iou_threshold,
        background_threshold=background_threshold,
        pred_image=matches.image,
        pred_row=matches.local_index,
        pred_label=matches.labels,
        pred_score=matches.scores,
        pred_outcome=outcome,
        pred_target=target,
        pred_target_iou=target_iou,
        gt_image=np.repeat(np.arange(len(counts)), counts).astype(np.int64),
        gt_row=np.concatenate([np.arange(n) for n in counts] + [np.zeros(0, np.int64)]),
        gt_label=np.concatenate([gt.labels for gt in ground_truths] + [np.zeros(0, np.int64)]),
        gt_outcome=gt_outcome,
        gt_fixed_by=gt_fixed_by,
    )
