"""Mask ops: the pixel convention, polygon <-> mask <-> box round trips, RLE forms."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from pycocotools import mask as coco_mask

from dfseg.ops.masks import (
    mask_to_polygons,
    mask_to_rle,
    masks_to_boxes_xyxy,
    merge_rings,
    polygon_area,
    polygon_to_mask,
    polygons_to_box_xyxy,
    rle_area,
    rle_to_box_xyxy,
    rle_to_coco,
    rle_to_mask,
    segment_to_mask,
)
from dfseg.structures import RLE, Polygons


def _box_ring(x1: float, y1: float, x2: float, y2: float) -> np.ndarray:
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float32)


def _random_blobs(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        if rng.random() < 0.5:
            cv2.circle(mask, centre, int(rng.integers(1, 20)), 1, -1)
        else:
            corners = rng.integers(0, max(height, width), (5, 2)).astype(np.int32)
            cv2.fillPoly(mask, [corners], 1)
    return mask


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = np.zeros_like(mask)
    cv2.drawContours(filled, contours, -1, 1, -1)
    return filled


def test_integer_box_polygon_covers_pixels_whose_centres_are_inside() -> None:
    mask = polygon_to_mask([_box_ring(2, 3, 5, 7)], height=10, width=10)
    expected = np.zeros((10, 10), np.uint8)
    expected[3:7, 2:5] = 1  # rows 3..6, columns 2..4
    np.testing.assert_array_equal(mask, expected)
    assert mask.dtype == np.uint8


@pytest.mark.parametrize("offset", [0.2, 0.6])
def test_fractional_box_polygon_follows_centres(offset: float) -> None:
    mask = polygon_to_mask([_box_ring(2 + offset, 3 + offset, 5 + offset, 7 + offset)], 10, 10)
    first = 2 if offset < 0.5 else 3  # first pixel centre (j + 0.5) inside
    cols = np.flatnonzero(mask.any(0))
    np.testing.assert_array_equal(cols, np.arange(first, first + 3))


def test_polygon_partly_outside_image_is_cut() -> None:
    mask = polygon_to_mask([_box_ring(-5, -5, 3, 2)], height=6, width=6)
    assert mask.sum() == 3 * 2
    assert mask[:2, :3].all()


def test_rings_are_unioned_and_short_rings_ignored() -> None:
    rings = [_box_ring(0, 0, 2, 2), _box_ring(4, 4, 6, 6), np.array([[1, 1], [3, 3]], np.float32)]
    mask = polygon_to_mask(rings, 8, 8)
    assert mask.sum() == 8
    assert polygon_to_mask([np.zeros((2, 2), np.float32)], 4, 5).shape == (4, 5)


@pytest.mark.parametrize("box", [(2, 3, 5, 7), (0, 0, 16, 12), (7.3, 1.8, 12.6, 9.1)])
def test_polygon_mask_box_round_trip(box: tuple[float, float, float, float]) -> None:
    ring = _box_ring(*box)
    mask = polygon_to_mask([ring], 12, 16)
    mask_box = masks_to_boxes_xyxy(mask[None])[0]
    np.testing.assert_allclose(mask_box, polygons_to_box_xyxy([ring]), atol=1.0)


def test_random_polygon_mask_box_within_a_pixel_of_bounds() -> None:
    rng = np.random.default_rng(1)
    for _ in range(30):
        centre = rng.uniform(20, 80, 2)
        angles = np.linspace(0, 2 * np.pi, 12, endpoint=False) + rng.uniform(0, 0.4, 12)
        radii = np.full(12, rng.uniform(5, 18))  # convex: no sharp tip between pixel centres
        ring = np.stack([centre[0] + radii * np.cos(angles), centre[1] + radii * np.sin(angles)], 1)
        mask = polygon_to_mask([ring], 100, 100)
        np.testing.assert_allclose(
            masks_to_boxes_xyxy(mask[None])[0], polygons_to_box_xyxy([ring]), atol=1.0
        )
        # rasterised area approximates the geometric area
        assert abs(mask.sum() - polygon_area(ring)) < 0.1 * polygon_area(ring) + 10


def test_masks_to_boxes_uses_pixel_edges_and_zeros_for_empty() -> None:
    masks = np.zeros((3, 5, 6), bool)
    masks[0, 1:3, 2:5] = True
    masks[2, 4, 5] = True
    boxes = masks_to_boxes_xyxy(masks)
    np.testing.assert_array_equal(boxes, [[2, 1, 5, 3], [0, 0, 0, 0], [5, 4, 6, 5]])
    assert boxes.dtype == np.float32
    assert masks_to_boxes_xyxy(np.zeros((0, 5, 6), bool)).shape == (0, 4)
    with pytest.raises(ValueError, match=r"\[N, H, W\]"):
        masks_to_boxes_xyxy(np.zeros((5, 6)))


def test_mask_to_polygons_round_trip_is_exact_on_random_masks() -> None:
    rng = np.random.default_rng(0)
    for _ in range(60):
        mask = _random_blobs(rng, 60, 80)
        rings = mask_to_polygons(mask, min_area=0)
        assert all(r.ndim == 2 and r.shape[1] == 2 and len(r) >= 3 for r in rings)
        assert all(r.dtype == np.float32 for r in rings)
        np.testing.assert_array_equal(polygon_to_mask(rings, 60, 80), _fill_holes(mask))


def test_mask_to_polygons_single_pixel_min_area_and_order() -> None:
    mask = np.zeros((10, 10), np.uint8)
    mask[2, 3] = 1
    mask[5:9, 5:9] = 1
    rings = mask_to_polygons(mask, min_area=1)
    assert len(rings) == 2
    assert polygon_to_mask(rings[:1], 10, 10).sum() == 16  # largest first
    assert polygon_to_mask(rings[1:], 10, 10)[2, 3] == 1
    assert len(mask_to_polygons(mask, min_area=2)) == 1
    assert mask_to_polygons(np.zeros((4, 4), np.uint8)) == []


def test_mask_to_polygons_holes_are_filled() -> None:
    mask = np.zeros((20, 20), np.uint8)
    mask[2:18, 2:18] = 1
    mask[8:12, 8:12] = 0
    rings = mask_to_polygons(mask)
    assert len(rings) == 1
    assert polygon_to_mask(rings, 20, 20).sum() == 16 * 16


def test_mask_to_polygons_simplify_reduces_vertices() -> None:
    mask = np.zeros((200, 200), np.uint8)
    cv2.circle(mask, (100, 100), 80, 1, -1)
    exact = mask_to_polygons(mask)[0]
    simple = mask_to_polygons(mask, simplify_tolerance=1.0)[0]
    assert len(simple) < len(exact) / 5
    iou = (polygon_to_mask([simple], 200, 200) & mask).sum() / mask.sum()
    assert iou > 0.98


def test_rle_round_trip_and_area_and_box() -> None:
    mask = np.zeros((7, 9), np.uint8)
    mask[1:4, 2:8] = 1
    rle = mask_to_rle(mask)
    assert rle["size"] == [7, 9]
    assert isinstance(rle["counts"], str)
    np.testing.assert_array_equal(rle_to_mask(rle), mask)
    assert rle_area(rle) == 18
    np.testing.assert_array_equal(rle_to_box_xyxy(rle), [2, 1, 8, 4])


def test_uncompressed_rle_counts_are_column_major() -> None:
    # column-major runs on a 3x2 image: 1 background, 3 foreground, 2 background
    uncompressed = RLE(counts=[1, 3, 2], height=3, width=2)
    expected = np.array([[0, 1], [1, 0], [1, 0]], np.uint8)
    np.testing.assert_array_equal(segment_to_mask(uncompressed, 3, 2), expected)
    compressed = rle_to_coco(uncompressed)
    assert isinstance(compressed["counts"], str)
    assert rle_area(compressed) == 3
    reference = coco_mask.frPyObjects({"size": [3, 2], "counts": [1, 3, 2]}, 3, 2)
    assert compressed["counts"] == reference["counts"].decode()


def test_segment_to_mask_dispatches_and_checks_rle_size() -> None:
    polygons = Polygons(rings=(_box_ring(1, 1, 3, 4),))
    assert segment_to_mask(polygons, 6, 6).sum() == 6
    mask = np.zeros((6, 6), np.uint8)
    mask[0, :] = 1
    rle = mask_to_rle(mask)
    as_structure = RLE(counts=rle["counts"], height=6, width=6)
    np.testing.assert_array_equal(segment_to_mask(as_structure, 6, 6), mask)
    with pytest.raises(ValueError, match="does not match the image"):
        segment_to_mask(as_structure, 6, 7)
    with pytest.raises(ValueError, match="Polygons or RLE"):
        segment_to_mask(object(), 6, 6)  # type: ignore[arg-type]


def test_polygon_area_shoelace() -> None:
    assert polygon_area(_box_ring(0, 0, 4, 3)) == pytest.approx(12.0)
    assert polygon_area(_box_ring(0, 0, 4, 3)[::-1]) == pytest.approx(12.0)
    assert polygon_area(np.zeros((2, 2))) == 0.0
    assert np.array_equal(polygons_to_box_xyxy([]), np.zeros(4))


def test_merge_rings_keeps_the_union_of_separate_parts() -> None:
    rng = np.random.default_rng(3)
    for _ in range(30):
        mask = _random_blobs(rng, 60, 80)
        rings = mask_to_polygons(mask, min_area=0)
        merged = merge_rings(rings)
        assert merged.ndim == 2 and merged.shape[1] == 2
        np.testing.assert_array_equal(polygon_to_mask([merged], 60, 80), _fill_holes(mask))
    single = _box_ring(1, 1, 4, 4)
    np.testing.assert_array_equal(merge_rings([single]), single)
    assert merge_rings([np.zeros((2, 2))]).shape == (0, 2)
