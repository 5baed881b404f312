"""4-image mosaic: four images around a random junction point, zoomed and cropped to the input.

Geometry: each image is first fitted to the input size (the same resize or letterbox fit as a
single sample), then scaled by one random zoom `s` shared by the four. The images meet at a
random junction point (top-left image ending there, top-right starting there, and so on) and
whatever falls outside the input is cut off. This equals the usual "2x canvas, random centre,
random scale about the canvas centre, crop" mosaic without building the canvas.

Each image goes through exactly one affine map (scale + integer shift), used for its pixels,
its boxes and the rasterisation of its polygons, so the three agree; masks and boxes are also
cut at the tile's borders, where the next image covers it.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from dfseg.data.image_reader import DecodedImage
from dfseg.data.sample import Sample, concatenate_samples, instances_to_sample
from dfseg.ops.resize import compute_resize, interpolation_for_scale

MOSAIC_TILES = 4


def _tile_rectangle(
    quadrant: int, junction_xy: tuple[int, int], tile_wh: tuple[int, int]
) -> tuple[int, int]:
    """(left, top) of a tile: quadrants 0..3 are top-left, top-right, bottom-left, bottom-right."""
    (junction_x, junction_y), (tile_w, tile_h) = junction_xy, tile_wh
    left = junction_x - tile_w if quadrant in (0, 2) else junction_x
    top = junction_y - tile_h if quadrant in (0, 1) else junction_y
    return left, top


def _place_tile(
    canvas: np.ndarray,
    tile: DecodedImage,
    quadrant: int,
    junction_xy: tuple[int, int],
    zoom: float,
    keep_ratio: bool,
    with_masks: bool,
) -> Sample | None:
    """Paint one tile onto `canvas` ([H, W, 3], in place) and return its instances there."""
    height, width = canvas.shape[:2]
    source_h, source_w = tile.source_hw
    fit_h, fit_w = compute_resize((source_h, source_w), (height, width), keep_ratio).resized_hw
    tile_w, tile_h = max(1, round(fit_w * zoom)), max(1, round(fit_h * zoom))
    left, top = _tile_rectangle(quadrant, junction_xy, (tile_w, tile_h))
    region = (max(left, 0), max(top, 0), min(left + tile_w, width), min(top + tile_h, height))
    x1, y1, x2, y2 = region
    if x2 <= x1 or y2 <= y1:
        return None
    decoded_h, decoded_w = tile.image.shape[:2]
    interpolation = interpolation_for_scale(tile_w / decoded_w, tile_h / decoded_h)
    resized = cv2.resize(tile.image, (tile_w, tile_h), interpolation=interpolation)
    # Decoded pixels -> tile pixels; the decoded image spans decoded_w * reduction original
    # pixels (>= source_w), and a window starts at tile.origin_xy.
    to_tile = np.array([[tile_w / decoded_w, 0.0, left], [0.0, tile_h / decoded_h, top]])
    canvas[y1:y2, x1:x2] = resized[y1 - top : y2 - top, x1 - left : x2 - left]
    affine = to_tile @ tile.original_to_image()
    return instances_to_sample(
        canvas,
        tile.annotation,
        tile.image_index,
        affine,
        with_masks,
        keep_crowd=False,
        region_xyxy=region,
    )


def build_mosaic(
    tiles: Sequence[DecodedImage],
    output_hw: tuple[int, int],
    keep_ratio: bool,
    zoom_range: tuple[float, float],
    rng: np.random.Generator,
    with_masks: bool,
    pad_value: int = 114,
) -> Sample:
    """Compose four images into one training sample.

    Args:
        tiles: exactly four source images with their annotations.
        output_hw: (height, width) of the network input.
        keep_ratio: fit each image keeping its aspect ratio (else stretch it to the input shape,
            as the single-image path does).
        zoom_range: (low, high) of the shared zoom; 0.5 shows all four images at half size.
        rng: the sample's random generator (zoom and junction point).
        with_masks: rasterise instance masks (segment task).
        pad_value: grey of the areas no image covers.

    Returns:
        The mosaic `Sample` (crowd instances dropped; boxes are the mapped annotation boxes cut to
        each tile, not yet recomputed from masks or filtered by size).
    """
    if len(tiles) != MOSAIC_TILES:
        raise ValueError(f"a mosaic needs {MOSAIC_TILES} images, got {len(tiles)}")
    height, width = output_hw
    zoom = float(rng.uniform(*zoom_range))
    # The junction sits where the canvas centre offset lands after zooming about the output
    # centre: within half a (zoomed) input of the output centre, never outside the output.
    offset_x, offset_y = rng.uniform(-0.5, 0.5, size=2) * zoom
    junction = (
        int(np.clip(round(width * (0.5 + offset_x)), 0, width)),
        int(np.clip(round(height * (0.5 + offset_y)), 0, height)),
    )
    canvas = np.full((height, width, 3), pad_value, dtype=np.uint8)
    parts = [
        _place_tile(canvas, tile, quadrant, junction, zoom, keep_ratio, with_masks)
        for quadrant, tile in enumerate(tiles)
    ]
    return concatenate_samples(canvas, [part for part in parts if part is not None])
