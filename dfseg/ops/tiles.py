"""Cutting an image into overlapping tiles (sliced inference, tiled training)."""

from __future__ import annotations

import numpy as np


def tile_starts(length: int, size: int, overlap: float) -> list[int]:
    """Start offsets of tiles of `size` along a side of `length` pixels: the fewest tiles whose
    neighbours share at least `overlap` of a tile, spread evenly from edge to edge (one tile
    when `length <= size`)."""
    if length <= size:
        return [0]
    step = max(1.0, size * (1.0 - overlap))
    count = int(np.ceil((length - size) / step - 1e-9)) + 1
    return [round(i * (length - size) / (count - 1)) for i in range(count)]


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
