"""Tiled inference: tile windows, recall on small objects, and masks stitched across borders.

The detector is `BlobBackend` behind a real `Predictor` (blob_detector.py): it needs 12 input
pixels to see a blob, so small objects vanish when a large image is squeezed to its input and
come back when tiles keep their resolution - the situation tiling exists for.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from blob_detector import blob_predictor, bright_colour

from dfseg.ops.box_overlap import box_iou_xyxy
from dfseg.ops.tiles import tile_starts, tile_windows
from dfseg.runtime.tiling import TileSettings, tile_settings


def test_tiles_cover_the_image_with_the_overlap_asked() -> None:
    assert tile_starts(100, 256, 0.2) == [0]
    assert tile_starts(1000, 256, 0.25) == [0, 186, 372, 558, 744]  # evenly, edge to edge
    assert tile_starts(512, 256, 0.2) == [0, 128, 256]
    windows = tile_windows(500, 1000, 256, 0.25)
    assert windows.shape == (3 * 5, 4)  # 500 rows need 3 tiles to overlap by 64 px
    for length in (300, 511, 999, 4000):
        starts = np.array(tile_starts(length, 256, 0.2))
        assert starts[0] == 0 and starts[-1] == length - 256
        assert np.all(np.diff(starts) <= 256 * 0.8)  # neighbours share at least the overlap
    covered = np.zeros((500, 1000), bool)
    for x1, y1, x2, y2 in windows:
        assert x2 - x1 == 256 and y2 - y1 == 256
        covered[y1:y2, x1:x2] = True
    assert covered.all()
    assert tile_windows(100, 120, 256, 0.2).tolist() == [[0, 0, 120, 100]]


def test_tile_settings_come_from_the_project_fields() -> None:
    assert tile_settings({"size": None}) is None
    assert tile_settings({"size": 320, "overlap": 0.1}, batch=4) == TileSettings(320, 0.1, batch=4)


def _small_objects(count: int = 30, size: int = 1024, radius: int = 6) -> tuple:
    rng = np.random.default_rng(0)
    image = np.full((size, size, 3), 90, np.uint8)
    boxes = []
    while len(boxes) < count:
        x, y = (int(v) for v in rng.integers(20, size - 20, 2))
        box = [x - radius, y - radius, x + radius + 1, y + radius + 1]
        if (boxes and box_iou_xyxy(np.array([box]), np.array(boxes)).max() > 0) or any(
            abs(x - (b[0] + radius)) < 4 * radius and abs(y - (b[1] + radius)) < 4 * radius
            for b in boxes
        ):
            continue
        cv2.circle(image, (x, y), radius, bright_colour(len(boxes) * 7 % 180), -1)
        boxes.append(box)
    return image, np.array(boxes, np.float32)


def _recall(detections, truth: np.ndarray) -> float:
    if not len(detections):
        return 0.0
    return float((box_iou_xyxy(truth, detections.boxes_xyxy).max(1) >= 0.5).mean())


def test_tiling_finds_small_objects_a_squeezed_image_loses() -> None:
    image, truth = _small_objects()
    untiled = blob_predictor(256)(image)
    tiled_predictor = blob_predictor(256)
    tiled_predictor.tiling = TileSettings(size=256, overlap=0.2)
    tiled = tiled_predictor(image)
    assert _recall(untiled, truth) <= 0.1  # 13 px discs are ~3 input pixels across at 1024->256
    assert _recall(tiled, truth) == 1.0
    assert len(tiled) == len(truth)  # objects in two tiles' overlap are merged, not doubled
    assert tiled.masks is not None and tiled.masks.shape == (len(truth), 1024, 1024)
    assert tiled_predictor.times.images == 1  # stage times count images, not tiles


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.mark.parametrize("merge", ["fuse", "nms"])
def test_an_object_cut_by_tile_borders_becomes_one_stitched_mask(merge: str) -> None:
    """A bar crossing three tiles and a disc on one border: the whole image at full resolution
    (input 512) is the reference; tiles of 256 see parts of both."""
    image = np.full((512, 512, 3), 80, np.uint8)
    cv2.ellipse(image, (250, 120), (215, 40), 0, 0, 360, bright_colour(20), -1)  # x 35..465
    cv2.circle(image, (230, 380), 45, bright_colour(100), -1)  # across the border at x = 256
    whole = blob_predictor(512)(image)
    assert len(whole) == 2 and whole.masks is not None
    predictor = blob_predictor(256)
    predictor.tiling = TileSettings(size=256, overlap=0.2, merge=merge)  # type: ignore[arg-type]
    tiled = predictor(image)
    if merge == "nms":  # parts of one object do not overlap enough to suppress each other
        assert len(tiled) > 2
        return
    assert len(tiled) == 2
    assert tiled.masks is not None
    for reference_box, reference_mask in zip(whole.boxes_xyxy, whole.masks, strict=True):
        match = int(np.argmax(box_iou_xyxy(reference_box[None], tiled.boxes_xyxy)[0]))
        assert _mask_iou(tiled.masks[match], reference_mask) >= 0.95
        np.testing.assert_allclose(tiled.boxes_xyxy[match], reference_box, atol=3)


def test_two_objects_side_by_side_stay_two() -> None:
    image = np.full((512, 512, 3), 80, np.uint8)
    cv2.rectangle(image, (200, 100), (240, 140), bright_colour(0), -1)
    cv2.rectangle(image, (246, 100), (286, 140), bright_colour(60), -1)  # 6 px apart, on a border
    predictor = blob_predictor(256)
    predictor.tiling = TileSettings(size=256, overlap=0.2)
    assert len(blob_predictor(512)(image)) == 2
    assert len(predictor(image)) == 2


def test_the_whole_image_pass_finds_objects_larger_than_a_tile() -> None:
    image = np.full((512, 512, 3), 80, np.uint8)
    cv2.rectangle(image, (20, 20), (490, 490), bright_colour(40), -1)  # 470 px, tiles of 160
    reference = blob_predictor(512)(image)
    predictor = blob_predictor(256)
    predictor.tiling = TileSettings(size=160, overlap=0.2, whole_image=True)
    tiled = predictor(image)
    assert len(tiled) == 1 and tiled.masks is not None and reference.masks is not None
    assert _mask_iou(tiled.masks[0], reference.masks[0]) >= 0.98
