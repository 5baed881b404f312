"""Resize / letterbox geometry: exact box round trips, image placement, masks back to original."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dfseg.ops.masks import polygon_to_mask
from dfseg.ops.resize import (
    ResizeParams,
    boxes_to_input,
    boxes_to_original,
    compute_resize,
    masks_to_original,
    resize_image,
)

# (orig_hw, target_hw): larger, smaller, non-square both ways, odd sizes.
SIZE_CASES = [
    ((480, 640), (640, 640)),
    ((1080, 1920), (640, 640)),
    ((100, 37), (640, 640)),
    ((333, 777), (320, 480)),
    ((777, 333), (480, 320)),
    ((64, 64), (256, 320)),
]
MODES = [(False, False), (True, False), (True, True)]  # (keep_ratio, rect)


def _random_boxes(rng: np.random.Generator, height: int, width: int, n: int = 20) -> np.ndarray:
    xy = rng.uniform(0, [width, height], size=(n, 2, 2))
    return np.concatenate([xy.min(axis=1), xy.max(axis=1)], axis=1)  # [n, 4] xyxy


def _fill_ring(ring_xy: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pixels whose centre (i + 0.5) is inside the ring (cv2.fillPoly would add its edge pixels)."""
    return polygon_to_mask([ring_xy], height, width)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.mark.parametrize(("orig_hw", "target_hw"), SIZE_CASES)
@pytest.mark.parametrize(("keep_ratio", "rect"), MODES)
def test_boxes_round_trip_exact(
    orig_hw: tuple[int, int], target_hw: tuple[int, int], keep_ratio: bool, rect: bool
) -> None:
    params = compute_resize(orig_hw, target_hw, keep_ratio=keep_ratio, rect=rect)
    boxes = _random_boxes(np.random.default_rng(0), *orig_hw)
    back = boxes_to_original(boxes_to_input(boxes, params), params)
    np.testing.assert_allclose(back, boxes, atol=1e-4)
    assert back.dtype == np.float64


@pytest.mark.parametrize(("orig_hw", "target_hw"), SIZE_CASES)
@pytest.mark.parametrize(("keep_ratio", "rect"), MODES)
def test_geometry_fits_target(
    orig_hw: tuple[int, int], target_hw: tuple[int, int], keep_ratio: bool, rect: bool
) -> None:
    params = compute_resize(orig_hw, target_hw, keep_ratio=keep_ratio, rect=rect)
    input_h, input_w = params.input_hw
    resized_h, resized_w = params.resized_hw
    left, top = params.pad_xy
    assert input_h <= target_hw[0] and input_w <= target_hw[1]
    assert left >= 0 and top >= 0
    assert left + resized_w <= input_w and top + resized_h <= input_h
    if not keep_ratio:
        assert params.input_hw == target_hw and params.pad_xy == (0, 0)
        return
    # Letterbox: one side fills the target (the image is scaled up when smaller), padding centred.
    assert resized_h == target_hw[0] or resized_w == target_hw[1]
    assert abs((input_w - resized_w) - 2 * left) <= 1 and abs((input_h - resized_h) - 2 * top) <= 1
    sx, sy = params.scale_xy
    assert abs(sx - sy) <= 1.0 / min(orig_hw)  # same ratio up to whole-pixel rounding
    if rect:
        assert input_h % 32 == 0 or input_h == target_hw[0]
        assert input_w % 32 == 0 or input_w == target_hw[1]
        assert input_h - resized_h < 32 and input_w - resized_w < 32
    else:
        assert params.input_hw == target_hw


def test_rect_pads_to_stride_only() -> None:
    params = compute_resize((480, 640), (640, 640), keep_ratio=True, rect=True)
    assert params.input_hw == (480, 640) and params.pad_xy == (0, 0)
    params = compute_resize((500, 1000), (640, 640), keep_ratio=True, rect=True)
    assert params.resized_hw == (320, 640) and params.input_hw == (320, 640)
    params = compute_resize((300, 1000), (640, 640), keep_ratio=True, rect=True)
    assert params.resized_hw == (192, 640) and params.input_hw == (192, 640)
    params = compute_resize((310, 1000), (640, 640), keep_ratio=True, rect=True)
    assert params.resized_hw == (198, 640) and params.input_hw == (224, 640)
    assert params.pad_xy == (0, 13)


def test_compute_resize_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="positive"):
        compute_resize((0, 10), (640, 640), keep_ratio=True)


@pytest.mark.parametrize(("orig_hw", "target_hw"), SIZE_CASES)
@pytest.mark.parametrize(("keep_ratio", "rect"), MODES)
def test_resize_image_places_content_where_boxes_map(
    orig_hw: tuple[int, int], target_hw: tuple[int, int], keep_ratio: bool, rect: bool
) -> None:
    """A white rectangle in the original lands on its mapped box in the input (within a pixel)."""
    height, width = orig_hw
    image = np.zeros((height, width, 3), np.uint8)
    box = np.array([[0.25 * width, 0.3 * height, 0.7 * width, 0.8 * height]]).round()
    x1, y1, x2, y2 = box[0].astype(int)
    image[y1:y2, x1:x2] = 255
    params = compute_resize(orig_hw, target_hw, keep_ratio=keep_ratio, rect=rect)
    resized = resize_image(image, params, pad_value=7)
    assert resized.shape == (*params.input_hw, 3) and resized.dtype == np.uint8
    bright = resized[..., 0] > 127
    ys, xs = np.nonzero(bright)
    found = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)
    np.testing.assert_allclose(found, boxes_to_input(box, params)[0], atol=1.01)
    left, top = params.pad_xy
    resized_h, resized_w = params.resized_hw
    padding = np.ones(params.input_hw, bool)
    padding[top : top + resized_h, left : left + resized_w] = False
    assert (resized[padding] == 7).all()


def test_resize_image_single_channel_and_checks_size() -> None:
    params = compute_resize((50, 80), (64, 64), keep_ratio=True)
    gray = np.full((50, 80), 200, np.uint8)
    assert resize_image(gray, params).shape == (64, 64)
    assert resize_image(gray[:, :, None], params).shape == (64, 64, 1)
    with pytest.raises(ValueError, match="params expect"):
        resize_image(np.zeros((10, 10, 3), np.uint8), params)


def test_boxes_to_original_clips_to_image() -> None:
    params = compute_resize((100, 200), (320, 320), keep_ratio=True)
    boxes = np.array([[-50.0, -50.0, 400.0, 400.0]], np.float32)
    np.testing.assert_allclose(boxes_to_original(boxes, params), [[0, 0, 200, 100]])
    assert boxes_to_original(boxes, params).dtype == np.float32
    assert boxes_to_original(np.zeros((0, 4)), params).shape == (0, 4)


def _blob_ring(orig_hw: tuple[int, int]) -> np.ndarray:
    """A star-shaped ring filling much of the image, in original pixels."""
    height, width = orig_hw
    angles = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    radius = 0.35 + 0.08 * np.sin(5 * angles)
    return np.stack(
        [width * (0.5 + radius * np.cos(angles)), height * (0.5 + radius * np.sin(angles))], axis=1
    )


@pytest.mark.parametrize(("orig_hw", "target_hw"), SIZE_CASES)
@pytest.mark.parametrize(("keep_ratio", "rect"), MODES)
@pytest.mark.parametrize("stride", [1, 4])
def test_masks_to_original_matches_mask_drawn_in_original(
    orig_hw: tuple[int, int], target_hw: tuple[int, int], keep_ratio: bool, rect: bool, stride: int
) -> None:
    params = compute_resize(orig_hw, target_hw, keep_ratio=keep_ratio, rect=rect)
    ring = _blob_ring(orig_hw)
    expected = _fill_ring(ring, *orig_hw).astype(bool)
    input_h, input_w = params.input_hw
    ring_input = boxes_to_input(np.concatenate([ring, ring], axis=1), params)[:, :2] / stride
    drawn = _fill_ring(ring_input, input_h // stride, input_w // stride)
    binary = masks_to_original(drawn[None].astype(bool), params)
    probabilities = masks_to_original(drawn[None].astype(np.float32), params)
    assert binary.shape == (1, *orig_hw) and binary.dtype == np.bool_
    assert probabilities.dtype == np.float32
    np.testing.assert_array_equal(binary[0], probabilities[0] >= 0.5)
    assert _iou(binary[0], expected) > 0.95


def test_bilinear_beats_nearest_for_quarter_resolution_masks() -> None:
    """The chosen interpolation: bilinear upsampling of an H/4 mask tracks the outline better."""
    orig_hw = (720, 1280)
    params = compute_resize(orig_hw, (640, 640), keep_ratio=True)
    ring = _blob_ring(orig_hw)
    expected = _fill_ring(ring, *orig_hw).astype(bool)
    ring_input = boxes_to_input(np.concatenate([ring, ring], axis=1), params)[:, :2] / 4
    drawn = _fill_ring(ring_input, 160, 160)
    bilinear = masks_to_original(drawn[None], params)[0]
    nearest = cv2.resize(  # crop the padding, then nearest-neighbour upsampling
        drawn[
            params.pad_xy[1] // 4 : (params.pad_xy[1] + params.resized_hw[0]) // 4,
            params.pad_xy[0] // 4 : (params.pad_xy[0] + params.resized_hw[1]) // 4,
        ],
        (orig_hw[1], orig_hw[0]),
        interpolation=cv2.INTER_NEAREST,
    ).astype(bool)
    assert _iou(bilinear, expected) > _iou(nearest, expected)
    assert _iou(bilinear, expected) > 0.98


def test_masks_to_original_handles_empty_and_many() -> None:
    params = compute_resize((90, 120), (64, 64), keep_ratio=True)
    assert masks_to_original(np.zeros((0, 16, 16), np.float32), params).shape == (0, 90, 120)
    many = np.zeros((300, 16, 16), np.uint8)
    many[:, 4:12, 4:12] = 1
    out = masks_to_original(many, params)
    assert out.shape == (300, 90, 120) and out.dtype == np.bool_
    assert (out == out[0]).all() and out[0].any()
    with pytest.raises(ValueError, match=r"\[N, h, w\]"):
        masks_to_original(np.zeros((16, 16)), params)


def test_params_are_frozen_and_affine_matches_boxes() -> None:
    params = compute_resize((480, 640), (640, 640), keep_ratio=True)
    assert isinstance(params, ResizeParams)
    with pytest.raises(AttributeError):
        params.pad_xy = (0, 0)  # type: ignore[misc]
    point = np.array([123.4, 56.7, 1.0])
    mapped = params.affine_to_input() @ point
    box = boxes_to_input(np.array([[123.4, 56.7, 123.4, 56.7]]), params)[0]
    np.testing.assert_allclose(mapped, box[:2])
