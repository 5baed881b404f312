"""Cutting an image into overlapping tiles (sliced inference, tiled training)."""

from __future__ import annotations

import numpy as np


def tile_starts(length: int, size: int, overlap: float) -> list[int]:
    """Start offsets of tiles of `size` along a side of `length` pixels, neighbours sharing
    about `overlap` of a tile; the last tile ends at the edge (one tile when `length <= size`)."""
    if length <= size:
        return [0]
    step = max(1, round(size * (1.0 - overlap)))
    starts = list(range(0, length - size, step))
    starts.append(length - size)
    return starts


def tile_windows(height: int, width: int, size: int, overlap: float) -> np.ndarray:
    """[K, 4] int64 tile windows (x1, y1, x2, y2), row by row, covering an image of
    `height` x `width`; a side shorter than `size` is covered by one tile of its length.

    Args:
        height, width: the image, pixels.
        size: tile side, pixels.
        overlap: fraction of a tile neighbours share, in [0, 1).
    """
    rows = tile_starts(height, size, overlap)
    cols = tile_starts(width, size, overlap)
    return np.array(
        [[x, y, min(x + size, width), min(y + size, height)] for y in rows for x in cols],
        dtype=np.int64,
    )


def touches_inner_edge(
    boxes_xyxy: np.ndarray, window_xyxy: np.ndarray, image_hw: tuple[int, int], margin: float
) -> np.ndarray:
    """[N] bool: the box (image pixels) lies within `margin` pixels of a side of its tile window
    that is not the image's own edge, i.e. the object may go on in the next tile."""
    x1, y1, x2, y2 = (float(v) for v in window_xyxy)
    height, width = image_hw
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    cut = np.zeros(len(boxes), dtype=bool)
    if x1 > 0:
        cut |= boxes[:, 0] <= x1 + margin
    if y1 > 0:
        cut |= boxes[:, 1] <= y1 + margin
    if x2 < width:
        cut |= boxes[:, 2] >= x2 - margin
    if y2 < height:
        cut |= boxes[:, 3] >= y2 - margin
    return cut
