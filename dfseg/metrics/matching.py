"""COCO's greedy prediction-to-ground-truth assignment, vectorised over images, classes, IoU
thresholds and area ranges at once.

The rule (pycocotools `evaluateImg`): predictions of a group (one image and class) are visited in
descending score; each takes, among the still-free ground truths it overlaps by at least the
threshold, the one with the highest overlap, preferring ground truths that are not ignored (crowd,
or outside the area range) and breaking ties towards the later ground truth in input order.
Crowd regions are never used up. A prediction's decision depends only on those scored above it in
its group, so the k-th candidate of every group can be decided in the same step ("wave"); only
predictions that overlap some ground truth at all take part, which keeps the number of waves small.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

COCO_IOU_CAP = 1 - 1e-10
"""pycocotools caps every IoU threshold here so that a perfect overlap can match at 1.0."""


@dataclass
class CandidatePairs:
    """Prediction/ground-truth pairs of the same group whose overlap reaches the lowest threshold.

    Attributes:
        det: [P] int64 prediction indices (into the flat, score-ordered predictions).
        gt: [P] int64 ground-truth indices (into the flat ground truth, input order).
        iou: [P] float64 overlaps (intersection over prediction area for crowd ground truth).
    Pairs are sorted by (det, gt).
    """

    det: np.ndarray
    gt: np.ndarray
    iou: np.ndarray

    @classmethod
    def empty(cls) -> CandidatePairs:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))

    @classmethod
    def concatenate(cls, parts: list[CandidatePairs]) -> CandidatePairs:
        if not parts:
            return cls.empty()
        return cls(
            det=np.concatenate([p.det for p in parts]).astype(np.int64),
            gt=np.concatenate([p.gt for p in parts]).astype(np.int64),
            iou=np.concatenate([p.iou for p in parts]).astype(np.float64),
        )


@dataclass
class MatchResult:
    """Outcome of `greedy_match`.

    Attributes:
        gt_index: [A, T, D] int64 matched ground truth per (area range, IoU threshold,
            prediction); -1 when unmatched.
        iou: [A, T, D] float64 overlap with that ground truth; 0 when unmatched.
    """

    gt_index: np.ndarray
    iou: np.ndarray

    @property
    def matched(self) -> np.ndarray:
        """[A, T, D] bool."""
        return self.gt_index >= 0


def _waves(det_group: np.ndarray, pairs: CandidatePairs) -> np.ndarray:
    """[P] wave of each pair: the rank of its prediction among its group's candidate predictions."""
    candidates, pair_candidate = np.unique(pairs.det, return_inverse=True)  # [U], [P]
    groups = det_group[candidates]  # [U]
    order = np.argsort(groups, kind="stable")  # keeps score order within a group
    sorted_groups = groups[order]
    run_start = np.r_[True, sorted_groups[1:] != sorted_groups[:-1]]  # [U]
    start_position = np.maximum.accumulate(np.where(run_start, np.arange(len(order)), 0))
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order)) - start_position
    return rank[pair_candidate]


def greedy_match(
    num_dets: int,
    det_group: np.ndarray,
    pairs: CandidatePairs,
    gt_crowd: np.ndarray,
    gt_ignore: np.ndarray,
    iou_thresholds: np.ndarray,
) -> MatchResult:
    """Assign predictions to ground truth, COCO style.

    Args:
        num_dets: D, number of predictions.
        det_group: [D] group id (image, or image and class); within a group, lower index = higher
            score (predictions are visited in index order).
        pairs: candidate pairs, sorted by (det, gt), only within groups.
        gt_crowd: [G] bool crowd flags (crowds can absorb any number of predictions).
        gt_ignore: [A, G] (or [G]) bool ignore flags per area range (crowds must be ignored too).
        iou_thresholds: [T] minimum overlap for a match (capped at 1 - 1e-10 as pycocotools does).

    Returns:
        The match of every prediction for every area range and threshold.
    """
    ignore = np.atleast_2d(np.asarray(gt_ignore, bool))  # [A, G]
    thresholds = np.minimum(np.asarray(iou_thresholds, np.float64), COCO_IOU_CAP)  # [T]
    num_areas, num_thresholds = len(ignore), len(thresholds)
    gt_index = np.full((num_areas, num_thresholds, num_dets), -1, np.int64)
    matched_iou = np.zeros((num_areas, num_thresholds, num_dets), np.float64)
    if len(pairs.det) == 0:
        return MatchResult(gt_index, matched_iou)
    crowd = np.asarray(gt_crowd, bool)
    used = np.zeros((num_areas, num_thresholds, ignore.shape[1]), bool)  # [A, T, G]
    waves = _waves(np.asarray(det_group), pairs)  # [P]
    order = np.argsort(waves, kind="stable")
    bounds = np.searchsorted(waves[order], np.arange(waves.max() + 2))
    for start, stop in itertools.pairwise(bounds):
        wave = order[start:stop]
        _match_wave(
            pairs.det[wave], pairs.gt[wave], pairs.iou[wave], crowd, ignore, thresholds, used,
            gt_index, matched_iou,
        )  # fmt: skip
    return MatchResult(gt_index, matched_iou)


def _match_wave(
    det: np.ndarray,
    gt: np.ndarray,
    iou: np.ndarray,
    crowd: np.ndarray,
    ignore: np.ndarray,
    thresholds: np.ndarray,
    used: np.ndarray,
    gt_index: np.ndarray,
    matched_iou: np.ndarray,
) -> None:
    """Decide one prediction per group (the pairs of one wave) and record it in place."""
    segment_start = np.flatnonzero(np.r_[True, det[1:] != det[:-1]])  # [S]
    segment_of_pair = np.cumsum(np.r_[False, det[1:] != det[:-1]])  # [P]
    free = ~(used[:, :, gt] & ~crowd[gt])  # [A, T, P]
    reaches = iou[None, None, :] >= thresholds[None, :, None]  # [1, T, P]
    pair_ignored = ignore[:, gt][:, None, :]  # [A, 1, P]
    available = free & reaches  # [A, T, P]
    available_regular = available & ~pair_ignored  # [A, T, P]
    has_regular = np.logical_or.reduceat(available_regular, segment_start, axis=2)  # [A, T, S]
    chosen = np.where(
        has_regular[..., segment_of_pair], available_regular, available & pair_ignored
    )
    key = np.where(chosen, iou[None, None, :], -1.0)  # [A, T, P]
    best = np.maximum.reduceat(key, segment_start, axis=2)  # [A, T, S]
    is_best = chosen & (key == best[..., segment_of_pair])  # [A, T, P]
    position = np.where(is_best, np.arange(len(det)), -1)  # [A, T, P]
    best_pair = np.maximum.reduceat(position, segment_start, axis=2)  # [A, T, S], last of ties
    area_idx, threshold_idx, segment_idx = np.nonzero(best_pair >= 0)
    pair = best_pair[area_idx, threshold_idx, segment_idx]
    gt_index[area_idx, threshold_idx, det[pair]] = gt[pair]
    matched_iou[area_idx, threshold_idx, det[pair]] = iou[pair]
    used[area_idx, threshold_idx, gt[pair]] = True


def gather_matched(
    values: np.ndarray, gt_index: np.ndarray, fill: bool | float | int
) -> np.ndarray:
    """Per-ground-truth values looked up for each prediction's match, `fill` where unmatched.

    Args:
        values: [G] or [A, G] per-ground-truth values.
        gt_index: [T, D] or [A, T, D] matched index, -1 when unmatched (A must agree).

    Returns:
        values at gt_index, shaped like gt_index.
    """
    padded = np.concatenate([values, np.full((*values.shape[:-1], 1), fill, values.dtype)], axis=-1)
    if values.ndim == 1:
        return padded[gt_index]  # -1 picks the fill column
    area_index = np.arange(len(values)).reshape(-1, *([1] * (gt_index.ndim - 1)))
    return padded[area_index, gt_index]
