"""Flatten per-image ground truth and predictions into dataset-wide arrays plus candidate pairs.

Every evaluator (COCO mAP, confidence sweeps, confusion matrix, and error analysis built on top)
starts here: predictions are grouped per image and class (or per image only, class-agnostic),
ordered by descending score within a group (ties keep input order, as pycocotools' stable sort
does), optionally cut to the top `max_dets` of each group, and paired with the ground truth they
overlap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from dfseg.metrics.inputs import ImageGroundTruth, ImagePredictions
from dfseg.metrics.iou import IouType, check_iou_type, image_iou, prediction_areas
from dfseg.metrics.matching import CandidatePairs

ProgressCallback = Callable[[int, int], None]
"""Called as progress(done, total) after each image."""


@dataclass
class FlatPredictions:
    """All kept predictions, sorted by (image, group class, descending score, input position).

    Attributes:
        image: [D] image position in the input list.
        labels: [D] class ids.
        scores: [D] float64.
        local_index: [D] row in the image's `ImagePredictions`.
        rank: [D] 0-based position by score within its (image, class) group.
        group: [D] group id (image * num_groups + class, or image when class-agnostic).
        areas: [D] float64 box (w*h) or mask (pixel) area.
    """

    image: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    local_index: np.ndarray
    rank: np.ndarray
    group: np.ndarray
    areas: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


@dataclass
class FlatGroundTruth:
    """All ground-truth instances in image order, input order within an image.

    Attributes:
        image: [G] image position; labels: [G]; crowd: [G] bool; areas: [G] float64 (see
        `ImageGroundTruth.resolved_areas`); local_index: [G] row in the image's ground truth.
    """

    image: np.ndarray
    labels: np.ndarray
    crowd: np.ndarray
    areas: np.ndarray
    local_index: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class FlatProblem:
    """Inputs of a matching problem over a whole dataset."""

    predictions: FlatPredictions
    ground_truth: FlatGroundTruth
    pairs: CandidatePairs
    num_images: int


def _sorted_image_predictions(
    predictions: ImagePredictions, class_agnostic: bool, min_score: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, group classes, ranks) of one image's kept predictions in group/score order."""
    rows = np.arange(len(predictions))
    if min_score is not None:
        rows = rows[predictions.scores[rows] >= min_score]
    group_class = np.zeros(len(rows), np.int64) if class_agnostic else predictions.labels[rows]
    if len(rows) == 0:
        return rows, group_class, rows
    order = np.lexsort((rows, -predictions.scores[rows], group_class))
    rows, group_class = rows[order], group_class[order]
    run_start = np.r_[True, group_class[1:] != group_class[:-1]]
    start = np.maximum.accumulate(np.where(run_start, np.arange(len(rows)), 0))
    return rows, group_class, np.arange(len(rows)) - start


def _image_pairs(
    ground_truth: ImageGroundTruth,
    predictions: ImagePredictions,
    rows: np.ndarray,
    group_class: np.ndarray,
    iou_type: IouType,
    min_iou: float,
    class_agnostic: bool,
) -> CandidatePairs:
    """Pairs (local row in `rows`, local ground truth) of one image reaching `min_iou`."""
    if len(rows) == 0 or len(ground_truth) == 0:
        return CandidatePairs.empty()
    ious = image_iou(ground_truth, predictions, iou_type, rows)  # [m, n]
    candidate = ious >= min_iou
    if not class_agnostic:
        candidate &= group_class[:, None] == ground_truth.labels[None, :]
    det, gt = np.nonzero(candidate)
    return CandidatePairs(det=det, gt=gt, iou=ious[det, gt])


def flatten(
    ground_truths: Sequence[ImageGroundTruth],
    predictions: Sequence[ImagePredictions],
    iou_type: IouType,
    min_iou: float,
    *,
    num_classes: int,
    class_agnostic: bool = False,
    max_dets: int | None = None,
    min_score: float | None = None,
    progress: ProgressCallback | None = None,
) -> FlatProblem:
    """Build the dataset-wide matching problem.

    Args:
        ground_truths: per image; predictions: per image, same order (validated by the caller).
        iou_type: "bbox" or "segm".
        min_iou: lowest overlap that can ever match (pairs below it are dropped).
        num_classes: C, for group ids.
        class_agnostic: group per image instead of per image and class.
        max_dets: keep only the top-scored this many per group (pycocotools' maxDets[-1]).
        min_score: drop predictions scored below this first.
        progress: optional progress(done, total) callback.
    """
    iou_type = check_iou_type(iou_type)
    ground_truths = [gt.for_iou_type(iou_type) for gt in ground_truths]
    groups_per_image = 1 if class_agnostic else max(num_classes, 1)
    det_parts: list[tuple[np.ndarray, ...]] = []
    pair_parts: list[CandidatePairs] = []
    det_offset, gt_offset = 0, 0
    for image, (gt, pred) in enumerate(zip(ground_truths, predictions, strict=True)):
        rows, group_class, rank = _sorted_image_predictions(pred, class_agnostic, min_score)
        if max_dets is not None:
            keep = rank < max_dets
            rows, group_class, rank = rows[keep], group_class[keep], rank[keep]
        pairs = _image_pairs(gt, pred, rows, group_class, iou_type, min_iou, class_agnostic)
        pair_parts.append(CandidatePairs(pairs.det + det_offset, pairs.gt + gt_offset, pairs.iou))
        areas = prediction_areas(pred, iou_type)[rows] if len(rows) else np.zeros(0)
        group = image * groups_per_image + group_class
        det_parts.append(
            (rows, group_class, rank, group, areas, pred.labels[rows], pred.scores[rows])
        )
        det_offset += len(rows)
        gt_offset += len(gt)
        if progress is not None:
            progress(image + 1, len(ground_truths))
    return FlatProblem(
        predictions=_flat_predictions(det_parts),
        ground_truth=_flat_ground_truth(ground_truths),
        pairs=CandidatePairs.concatenate(pair_parts),
        num_images=len(ground_truths),
    )


def _flat_predictions(parts: list[tuple[np.ndarray, ...]]) -> FlatPredictions:
    counts = [len(part[0]) for part in parts]
    column = [
        np.concatenate([part[i] for part in parts]) if parts else np.zeros(0) for i in range(7)
    ]
    rows, _, rank, group, areas, labels, scores = column
    return FlatPredictions(
        image=np.repeat(np.arange(len(parts)), counts).astype(np.int64),
        labels=labels.astype(np.int64),
        scores=scores.astype(np.float64),
        local_index=rows.astype(np.int64),
        rank=rank.astype(np.int64),
        group=group.astype(np.int64),
        areas=areas.astype(np.float64),
    )


def _flat_ground_truth(ground_truths: Sequence[ImageGroundTruth]) -> FlatGroundTruth:
    counts = [len(gt) for gt in ground_truths]

    def column(values: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(values).astype(dtype) if values else np.zeros(0, dtype)

    return FlatGroundTruth(
        image=np.repeat(np.arange(len(ground_truths)), counts).astype(np.int64),
        labels=column([gt.labels for gt in ground_truths], np.int64),
        crowd=column([gt.crowd for gt in ground_truths], bool),
        areas=column([gt.resolved_areas for gt in ground_truths], np.float64),
        local_index=column([np.arange(n) for n in counts], np.int64),
    )
