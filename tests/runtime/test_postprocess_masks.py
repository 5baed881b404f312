"""Masks warped only inside their boxes equal the whole-image warp clipped to the boxes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dfseg.ops.resize import compute_resize, masks_to_original
from dfseg.runtime.outputs import RawOutputs
from dfseg.runtime.postprocess import PostprocessSettings, to_detections


def _clipped_full_warp(logits: np.ndarray, boxes: np.ndarray, params) -> np.ndarray:  # type: ignore[no-untyped-def]
    masks = masks_to_original(logits, params) > 0
    for mask, box in zip(masks, boxes, strict=True):
        x1, y1 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
        x2, y2 = int(np.ceil(box[2])), int(np.ceil(box[3]))
        clipped = np.zeros_like(mask)
        clipped[y1:y2, x1:x2] = mask[y1:y2, x1:x2]
        mask[:] = clipped
    return masks


@pytest.mark.parametrize(
    "orig_hw,keep_ratio", [((720, 1280), False), ((333, 517), True), ((1000, 300), True)]
)
def test_box_warps_equal_full_warps(orig_hw: tuple[int, int], keep_ratio: bool) -> None:
    rng = np.random.default_rng(0)
    count = 12
    corners = rng.uniform(-30, 560, (1, count, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(2, 300, (1, count, 2))], -1)
    logits = np.stack(
        [cv2.GaussianBlur(rng.normal(size=(64, 64)).astype(np.float32), (9, 9), 3) * 5
         for _ in range(count)]
    )[None]  # fmt: skip
    scores = np.linspace(0.9, 0.5, count, dtype=np.float32)[None]
    raw = RawOutputs(np.zeros((1, count), np.int64), scores, boxes.astype(np.float32), logits)
    params = compute_resize(orig_hw, (256, 256), keep_ratio)
    detections = to_detections(raw, 0, params, ["a"], PostprocessSettings(conf=0.0))
    assert detections.masks is not None and detections.masks.shape == (count, *orig_hw)
    expected = _clipped_full_warp(logits[0], detections.boxes_xyxy, params)
    differing = (detections.masks != expected).sum()
    assert expected.sum() > 1000
    assert differing <= 0.005 * expected.sum()  # cv2 rounds coordinates to 1/32 px
