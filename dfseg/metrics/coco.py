"""COCO mAP/mAR for boxes and masks, equal to pycocotools' COCOeval on the same inputs.

The semantics are pycocotools' exactly (including its quirks): maxDets are budgets per image *and
class*; crowd ground truth is matched by intersection over the prediction's area and absorbs any
number of predictions; a ground truth outside an area range is ignored there, as is an unmatched
prediction outside it; 101-point interpolated precision. Images are the positions of the input
lists, classes are 0..num_classes-1 (all of them are COCO categories, with or without ground
truth). Prediction areas are box w*h for "bbox" and mask pixel counts for "segm".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dfseg.metrics.coco_result import CocoParams, CocoResult
from dfseg.metrics.collect import FlatProblem, ProgressCallback, flatten
from dfseg.metrics.errors import MetricsInputError
from dfseg.metrics.inputs import ImageGroundTruth, ImagePredictions, as_predictions, check_inputs
from dfseg.metrics.iou import IouType, check_iou_type
from dfseg.metrics.matching import COCO_IOU_CAP, MatchResult, gather_matched, greedy_match
from dfseg.structures.detections import Detections


def evaluate_coco(
    ground_truths: Sequence[ImageGroundTruth],
    predictions: Sequence[ImagePredictions | Detections],
    iou_type: IouType = "bbox",
    num_classes: int | None = None,
    params: CocoParams | None = None,
    progress: ProgressCallback | None = None,
) -> CocoResult:
    """COCO evaluation of a dataset.

    Args:
        ground_truths: per image (boxes xyxy absolute pixels, labels, crowd flags, masks for segm).
        predictions: per image, same order, unfiltered (e.g. top 300 queries); `Detections` work.
        iou_type: "bbox" or "segm".
        num_classes: K; None infers max label + 1.
        params: thresholds, area ranges, max dets; default pycocotools'.
        progress: optional progress(done, total) callback, called per image.

    Returns:
        precision/recall arrays and the 12 summary numbers of pycocotools.
    """
    iou_type = check_iou_type(iou_type)
    params = _checked(params or CocoParams())
    preds = as_predictions(predictions)
    num_classes = check_inputs(ground_truths, preds, num_classes)
    min_iou = float(np.minimum(params.iou_thresholds, COCO_IOU_CAP).min())
    problem = flatten(
        ground_truths, preds, iou_type, min_iou, num_classes=num_classes,
        max_dets=params.max_dets[-1], progress=progress,
    )  # fmt: skip
    gt_ignore = _ground_truth_ignore(problem, params)  # [A, G]
    match = greedy_match(
        len(problem.predictions), problem.predictions.group, problem.pairs,
        problem.ground_truth.crowd, gt_ignore, params.iou_thresholds,
    )  # fmt: skip
    det_ignore = _prediction_ignore(problem, params, match, gt_ignore)  # [A, T, D]
    precision, recall, scores = _accumulate(
        problem, params, num_classes, match, gt_ignore, det_ignore
    )
    gt = problem.ground_truth
    regular = ~gt.crowd
    return CocoResult(
        iou_type=iou_type,
        params=params,
        precision=precision,
        recall=recall,
        scores=scores,
        num_instances=np.bincount(gt.labels[regular], minlength=num_classes),
        num_images_with_class=_images_with_class(
            gt.labels[regular], gt.image[regular], num_classes
        ),
    )


def _checked(params: CocoParams) -> CocoParams:
    if not params.max_dets or list(params.max_dets) != sorted(params.max_dets):
        raise MetricsInputError(f"params.max_dets must be ascending, got {params.max_dets}")
    if (np.asarray(params.iou_thresholds) <= 0).any():
        raise MetricsInputError("params.iou_thresholds must be > 0")
    return params


def _images_with_class(labels: np.ndarray, image: np.ndarray, num_classes: int) -> np.ndarray:
    """[K] number of distinct images in which each class occurs."""
    if len(labels) == 0:
        return np.zeros(num_classes, np.int64)
    pairs = np.unique(np.stack([labels, image]), axis=1)  # [2, U] distinct (class, image)
    return np.bincount(pairs[0], minlength=num_classes)


def _out_of_range(areas: np.ndarray, params: CocoParams) -> np.ndarray:
    """[A, N] True where an area falls outside an (inclusive) area range."""
    ranges = np.asarray(params.area_ranges, dtype=np.float64)  # [A, 2]
    return (areas[None, :] < ranges[:, :1]) | (areas[None, :] > ranges[:, 1:])


def _ground_truth_ignore(problem: FlatProblem, params: CocoParams) -> np.ndarray:
    gt = problem.ground_truth
    return gt.crowd[None, :] | _out_of_range(gt.areas, params)  # [A, G]


def _prediction_ignore(
    problem: FlatProblem, params: CocoParams, match: MatchResult, gt_ignore: np.ndarray
) -> np.ndarray:
    """[A, T, D]: matched to an ignored ground truth, or unmatched and outside the area range."""
    outside = _out_of_range(problem.predictions.areas, params)  # [A, D]
    matched_ignored = gather_matched(gt_ignore, match.gt_index, False)  # [A, T, D]
    return np.where(match.matched, matched_ignored, outside[:, None, :])


def _accumulate(
    problem: FlatProblem,
    params: CocoParams,
    num_classes: int,
    match: MatchResult,
    gt_ignore: np.ndarray,
    det_ignore: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pycocotools `accumulate`, vectorised over area ranges and IoU thresholds."""
    num_t, num_r = len(params.iou_thresholds), len(params.recall_thresholds)
    num_a, num_m = len(params.area_ranges), len(params.max_dets)
    precision = -np.ones((num_t, num_r, num_classes, num_a, num_m))
    recall = -np.ones((num_t, num_classes, num_a, num_m))
    scores = -np.ones((num_t, num_r, num_classes, num_a, num_m))
    dets, gt = problem.predictions, problem.ground_truth
    # pycocotools concatenates images in id order, then stable-sorts by score: so ties between
    # images go to the earlier image, and within an image to the earlier prediction.
    order = np.lexsort((dets.local_index, dets.image, -dets.scores, dets.labels))
    class_bounds = np.searchsorted(dets.labels[order], np.arange(num_classes + 1))
    matched_all = match.matched  # [A, T, D]
    for k in range(num_classes):
        class_dets = order[class_bounds[k] : class_bounds[k + 1]]
        num_regular = (~gt_ignore[:, gt.labels == k]).sum(axis=1)  # [A]
        for m, max_det in enumerate(params.max_dets):
            kept = class_dets[dets.rank[class_dets] < max_det]  # [n]
            matched = matched_all[:, :, kept]  # [A, T, n]
            counted = ~det_ignore[:, :, kept]  # [A, T, n]
            tp_sum = np.cumsum(matched & counted, axis=2).astype(float)  # [A, T, n]
            fp_sum = np.cumsum(~matched & counted, axis=2).astype(float)  # [A, T, n]
            for a in np.flatnonzero(num_regular):
                curves = _interpolate(
                    tp_sum[a], fp_sum[a], num_regular[a], dets.scores[kept], params
                )
                recall[:, k, a, m], precision[:, :, k, a, m], scores[:, :, k, a, m] = curves
    return precision, recall, scores


def _interpolate(
    tp_sum: np.ndarray,
    fp_sum: np.ndarray,
    num_regular: int,
    sorted_scores: np.ndarray,
    params: CocoParams,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One class, area range and max-dets budget, all IoU thresholds.

    Args:
        tp_sum, fp_sum: [T, n] cumulative counts along descending score.
        num_regular: non-ignored ground truth count (> 0).
        sorted_scores: [n] descending.

    Returns:
        final recall [T], interpolated precision [T, R], score at each recall point [T, R].
    """
    num_t, num_dets = tp_sum.shape
    rc = tp_sum / num_regular  # [T, n]
    pr = tp_sum / (fp_sum + tp_sum + np.spacing(1))  # [T, n]
    final_recall = rc[:, -1] if num_dets else np.zeros(num_t)
    pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]  # precision envelope
    recall_points = params.recall_thresholds
    precision = np.zeros((num_t, len(recall_points)))
    score_at = np.zeros((num_t, len(recall_points)))
    for t in range(num_t):
        index = np.searchsorted(rc[t], recall_points, side="left")  # [R]
        reached = index < num_dets
        precision[t, reached] = pr[t, index[reached]]
        score_at[t, reached] = sorted_scores[index[reached]]
    return final_recall, precision, score_at
