"""What each TIDE error type costs: fix it (as TIDE defines the fix), re-evaluate with
`dfseg.metrics.evaluate_coco`, and report the AP gained (dAP).

Fixes, per error type (TIDE's `Error.fix`):
- classification / localization: the highest-scored error of the type pointing at an object no
  prediction found becomes its true positive (relabelled to the object's class and moved onto its
  box or mask); every other error of the type is removed.
- both, duplicate, background: the predictions are removed.
- missed: the missed objects are removed from the ground truth.
Two more, TIDE's "special" errors: false_positives removes every false positive, false_negatives
removes every object nobody found.

For AP50 the cases are classified at IoU 0.5. For AP50-95 they are classified again at each COCO
IoU threshold, the fix is evaluated at that threshold, and the gains are averaged (over the
thresholds where AP stays defined). Fixes only
remove false positives, add true positives or drop unfound objects, so a dAP is never negative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from dfseg.analysis.errors.tide import (
    DEFAULT_BACKGROUND_THRESHOLD,
    ERROR_TYPES,
    ErrorCases,
    classify_errors,
)
from dfseg.analysis.exceptions import AnalysisError
from dfseg.metrics import CocoParams, ImageGroundTruth, ImagePredictions, evaluate_coco
from dfseg.structures.progress import ProgressCallback, ProgressEvent, report

DapMetric = Literal["ap50", "ap50_95"]
SPECIAL_FIXES = ("false_positives", "false_negatives")
FIXES: tuple[str, ...] = (*ERROR_TYPES, *SPECIAL_FIXES)
IOU_THRESHOLDS: dict[DapMetric, np.ndarray] = {
    "ap50": np.array([0.5]),
    "ap50_95": CocoParams().iou_thresholds,
}


@dataclass
class ApDeltas:
    """AP of a dataset and the AP gained by fixing each error type.

    Attributes:
        iou_type: "bbox" or "segm".
        metric: "ap50" or "ap50_95" (mean over the COCO IoU thresholds).
        ap: the metric as it is (NaN without ground truth).
        delta: fix name (`FIXES`) -> AP after the fix minus `ap`.
    """

    iou_type: str
    metric: DapMetric
    ap: float
    delta: dict[str, float]


def error_ap_deltas(
    ground_truths: Sequence[ImageGroundTruth],
    predictions: Sequence[ImagePredictions],
    num_classes: int,
    iou_type: Literal["bbox", "segm"] = "bbox",
    metric: DapMetric = "ap50",
    background_threshold: float = DEFAULT_BACKGROUND_THRESHOLD,
    progress: ProgressCallback | None = None,
) -> ApDeltas:
    """dAP of every error type (see the module docstring).

    Args:
        ground_truths: per image. predictions: per image, same order, unfiltered (at most 100
            per image and class count, COCO's maxDets).
        num_classes: C.
        iou_type: "bbox" or "segm" (both sides need masks then).
        metric: "ap50" or "ap50_95".
        background_threshold: TIDE's t_b.
        progress: optional callback, one event per IoU threshold.
    """
    if iou_type == "bbox":  # masks play no part; dropping them saves RLE work in every pass
        predictions = [ImagePredictions(p.boxes_xyxy, p.scores, p.labels) for p in predictions]
    thresholds = IOU_THRESHOLDS[metric]
    base = np.zeros(len(thresholds))
    fixed = np.zeros((len(FIXES), len(thresholds)))
    for index, threshold in enumerate(thresholds):
        cases = classify_errors(
            ground_truths, predictions, iou_type, float(threshold), background_threshold,
            num_classes,
        )  # fmt: skip
        base[index] = _ap(ground_truths, predictions, iou_type, threshold, num_classes)
        for row, fix in enumerate(FIXES):
            gts, preds = apply_fix(cases, ground_truths, predictions, fix)
            fixed[row, index] = _ap(gts, preds, iou_type, threshold, num_classes)
        report(progress, ProgressEvent(f"dAP {iou_type}", index + 1, len(thresholds)))
    delta = {fix: _mean_defined(fixed[row] - base) for row, fix in enumerate(FIXES)}
    return ApDeltas(iou_type=iou_type, metric=metric, ap=_mean_defined(base), delta=delta)


def _mean_defined(values: np.ndarray) -> float:
    """Mean over the IoU thresholds where AP is defined (a fix that drops every object of the
    dataset at some thresholds leaves none to measure there); NaN when it is defined nowhere."""
    defined = values[np.isfinite(values)]
    return float(defined.mean()) if len(defined) else float("nan")


def _ap(
    ground_truths: Sequence[ImageGroundTruth],
    predictions: Sequence[ImagePredictions],
    iou_type: Literal["bbox", "segm"],
    threshold: float,
    num_classes: int,
) -> float:
    params = CocoParams(iou_thresholds=np.array([threshold]))
    result = evaluate_coco(ground_truths, predictions, iou_type, num_classes, params)
    value = result.map50_95  # the mean over the one threshold given
    return float("nan") if value < 0 else value


def apply_fix(
    cases: ErrorCases,
    ground_truths: Sequence[ImageGroundTruth],
    predictions: Sequence[ImagePredictions],
    fix: str,
) -> tuple[list[ImageGroundTruth], list[ImagePredictions]]:
    """The dataset with one error type fixed (see the module docstring).

    Args:
        cases: `classify_errors` of exactly these inputs.
        ground_truths, predictions: per image.
        fix: an error type or "false_positives" / "false_negatives".

    Returns:
        New per-image lists; untouched images are the same objects.
    """
    if fix not in FIXES:
        raise AnalysisError(f"unknown fix {fix!r}; choose one of {list(FIXES)}")
    gts, preds = list(ground_truths), list(predictions)
    if fix in ("missed", "false_negatives"):
        drop = cases.error_mask("missed") if fix == "missed" else cases.false_negative  # [G]
        for image, flat in _by_image(cases.gt_image, drop).items():
            gts[image] = _without_rows(gts[image], cases.gt_row[flat])
        return gts, preds
    if fix == "false_positives":
        remove, promote = cases.false_positive, np.zeros_like(cases.false_positive)
    else:
        of_type = cases.error_mask(fix)
        promote = of_type & cases.becomes_true_positive
        remove = of_type & ~promote
    for image, flat in _by_image(cases.pred_image, remove | promote).items():
        lifted = flat[promote[flat]]
        preds[image] = _edited(
            preds[image], gts[image], cases.pred_row[flat[remove[flat]]],
            cases.pred_row[lifted], cases.pred_target[lifted],
        )  # fmt: skip
    return gts, preds


def _by_image(image_of: np.ndarray, selected: np.ndarray) -> dict[int, np.ndarray]:
    """{image: flat indices} of the selected entries; `image_of` is sorted (image by image)."""
    flat = np.flatnonzero(selected)
    if len(flat) == 0:
        return {}
    images, starts = np.unique(image_of[flat], return_index=True)
    return dict(zip(images.tolist(), np.split(flat, starts[1:]), strict=True))


def _without_rows(gt: ImageGroundTruth, rows: np.ndarray) -> ImageGroundTruth:
    keep = np.ones(len(gt), bool)
    keep[rows] = False
    return ImageGroundTruth(
        boxes_xyxy=gt.boxes_xyxy[keep],
        labels=gt.labels[keep],
        iscrowd=gt.crowd[keep],
        masks=None if gt.masks is None else [gt.rles[i] for i in np.flatnonzero(keep)],
        areas=gt.resolved_areas[keep],
        image_size=gt.image_size,
        where=gt.where,
    )


def _edited(
    pred: ImagePredictions,
    gt: ImageGroundTruth,
    remove_rows: np.ndarray,
    promote_rows: np.ndarray,
    targets: np.ndarray,
) -> ImagePredictions:
    """Predictions with `remove_rows` dropped and `promote_rows` turned into exact copies of
    their target objects (class, box and mask), keeping their scores."""
    boxes, labels = pred.boxes_xyxy.copy(), pred.labels.copy()
    boxes[promote_rows], labels[promote_rows] = gt.boxes_xyxy[targets], gt.labels[targets]
    masks = None
    if pred.masks is not None:
        masks = list(pred.rles)
        for row, target in zip(promote_rows, targets, strict=True):
            masks[row] = gt.rles[target]
    keep = np.ones(len(pred), bool)
    keep[remove_rows] = False
    return ImagePredictions(
        boxes_xyxy=boxes[keep],
        scores=pred.scores[keep],
        labels=labels[keep],
        masks=None if masks is None else [m for m, k in zip(masks, keep, strict=True) if k],
        where=pred.where,
    )
