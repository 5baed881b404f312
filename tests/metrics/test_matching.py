"""COCO's greedy assignment rule and the overlap primitives it runs on."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from dfseg.metrics import CandidatePairs, box_iou_coco, greedy_match, mask_iou_coco
from dfseg.metrics.masks import encode_bool_masks, rle_areas
from dfseg.metrics.matching import gather_matched


def _pairs(det: list[int], gt: list[int], iou: list[float]) -> CandidatePairs:
    return CandidatePairs(np.array(det), np.array(gt), np.array(iou, np.float64))


def test_box_iou_equals_pycocotools_including_crowd() -> None:
    rng = np.random.default_rng(0)
    pred = np.concatenate([rng.uniform(0, 80, (30, 2)), rng.uniform(1, 40, (30, 2))], axis=1)
    gt = np.concatenate([rng.uniform(0, 80, (12, 2)), rng.uniform(1, 40, (12, 2))], axis=1)
    gt[3] = pred[5]  # identical boxes
    crowd = rng.random(12) < 0.3
    ours = box_iou_coco(pred, gt, crowd)
    reference = np.asarray(mask_utils.iou(pred.tolist(), gt.tolist(), crowd.astype(int).tolist()))
    assert (ours > 0).sum() > 10
    np.testing.assert_array_equal(ours, reference)
    assert ours[5, 3] == pytest.approx(1.0)  # bit-equal to pycocotools, even its 1 + 4e-16


def test_crowd_overlap_is_intersection_over_prediction_area() -> None:
    crowd_region = np.array([[0.0, 0.0, 100.0, 100.0]])
    inside = np.array([[10.0, 10.0, 20.0, 20.0]])
    half_out = np.array([[90.0, 0.0, 20.0, 10.0]])
    assert box_iou_coco(inside, crowd_region, np.array([True]))[0, 0] == 1.0
    assert box_iou_coco(half_out, crowd_region, np.array([True]))[0, 0] == 0.5
    assert box_iou_coco(inside, crowd_region, np.array([False]))[0, 0] == 0.04


def test_mask_iou_matches_dense_computation() -> None:
    masks = np.zeros((2, 20, 30), bool)
    masks[0, 2:12, 3:13] = True  # 100 px
    masks[1, 7:17, 8:18] = True  # 100 px, 25 shared
    ious = mask_iou_coco(encode_bool_masks(masks[:1]), encode_bool_masks(masks[1:]))
    assert ious.shape == (1, 1)
    assert ious[0, 0] == 25 / 175


def test_highest_overlap_wins_and_ground_truth_is_used_once() -> None:
    # det 0 (best score) overlaps gt 0 (.6) and gt 1 (.8); det 1 overlaps gt 1 (.9) only.
    pairs = _pairs([0, 0, 1], [0, 1, 1], [0.6, 0.8, 0.9])
    result = greedy_match(
        2, np.zeros(2), pairs, np.zeros(2, bool), np.zeros(2, bool), np.array([0.5, 0.7])
    )
    # at .5: det 0 takes gt 1 (highest overlap, not det 1's better claim: greedy by score)
    assert result.gt_index[0, 0].tolist() == [1, -1]
    assert result.gt_index[0, 1].tolist() == [1, -1]
    assert result.iou[0, 0].tolist() == [0.8, 0.0]


def test_threshold_decides_match_per_column() -> None:
    pairs = _pairs([0], [0], [0.6])
    result = greedy_match(
        1, np.zeros(1), pairs, np.zeros(1, bool), np.zeros(1, bool), np.array([0.5, 0.6, 0.65])
    )
    assert result.gt_index[0, :, 0].tolist() == [0, 0, -1]


def test_equal_overlaps_go_to_the_later_ground_truth() -> None:
    """pycocotools replaces its best match on `>=`, so ties end on the last candidate."""
    pairs = _pairs([0, 0], [0, 1], [0.7, 0.7])
    result = greedy_match(
        1, np.zeros(1), pairs, np.zeros(2, bool), np.zeros(2, bool), np.array([0.5])
    )
    assert result.gt_index[0, 0, 0] == 1


def test_regular_ground_truth_preferred_over_ignored_one() -> None:
    # gt 0 ignored (e.g. outside the area range) overlaps more than regular gt 1.
    pairs = _pairs([0, 0, 1], [0, 1, 0], [0.9, 0.6, 0.8])
    ignore = np.array([[True, False]])
    result = greedy_match(2, np.zeros(2), pairs, np.zeros(2, bool), ignore, np.array([0.5]))
    assert result.gt_index[0, 0].tolist() == [1, 0]


def test_crowd_absorbs_any_number_of_predictions() -> None:
    pairs = _pairs([0, 1, 2], [0, 0, 0], [1.0, 0.9, 0.8])
    crowd = np.array([True])
    result = greedy_match(3, np.zeros(3), pairs, crowd, crowd, np.array([0.5]))
    assert result.gt_index[0, 0].tolist() == [0, 0, 0]


def test_groups_are_independent_and_area_ranges_vectorised() -> None:
    # group 0: dets 0, 1 compete for gt 0; group 1: det 2 alone on gt 1.
    pairs = _pairs([0, 1, 2], [0, 0, 1], [0.7, 0.9, 0.6])
    ignore = np.array([[False, False], [True, False]])  # area range 1 ignores gt 0
    result = greedy_match(3, np.array([0, 0, 1]), pairs, np.zeros(2, bool), ignore, np.array([0.5]))
    assert result.gt_index[0, 0].tolist() == [0, -1, 1]
    assert result.gt_index[1, 0].tolist() == [0, -1, 1]  # ignored gts are still used once
    assert gather_matched(ignore, result.gt_index, False)[:, 0].tolist() == [
        [False, False, False],
        [True, False, False],
    ]


def test_no_pairs_means_nothing_matched() -> None:
    result = greedy_match(
        4,
        np.zeros(4),
        CandidatePairs.empty(),
        np.zeros(0, bool),
        np.zeros(0, bool),
        np.array([0.5]),
    )
    assert result.gt_index.shape == (1, 1, 4)
    assert (result.gt_index == -1).all()


def test_mask_areas_of_many_masks() -> None:
    """pycocotools' `area` breaks past 255 masks per call; `rle_areas` must not."""
    masks = np.zeros((300, 8, 8), bool)
    for index in range(300):
        masks[index, : index % 8 + 1, :2] = True
    areas = rle_areas(encode_bool_masks(masks))
    np.testing.assert_array_equal(areas, masks.reshape(300, -1).sum(1))
