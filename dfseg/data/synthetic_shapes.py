"""Shape outlines and background textures for the synthetic demo dataset.

Shapes are polygons in absolute pixel (x, y) coordinates (see `dfseg.ops.masks` for the pixel
convention); each is one name -> function entry in `SHAPES`, textures likewise in `TEXTURES`.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

ShapeFunction = Callable[[np.ndarray, float, float], np.ndarray]


def _regular(sides: int, phase: float = 0.0) -> np.ndarray:
    """[sides, 2] unit-radius regular polygon."""
    angles = phase + np.arange(sides) * 2 * np.pi / sides
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _circle(centre: np.ndarray, size: float, angle: float) -> np.ndarray:
    return centre + _regular(48) * size / 2


def _square(centre: np.ndarray, size: float, angle: float) -> np.ndarray:
    side = 0.8 * size  # so that upright squares are not much smaller than the other shapes
    return centre + _regular(4, angle + np.pi / 4) * side / np.sqrt(2)


def _triangle(centre: np.ndarray, size: float, angle: float) -> np.ndarray:
    # shifted so the bounding box, not the circumcentre, is centred
    corners = _regular(3, angle - np.pi / 2) * size / 2
    return centre + corners - (corners.min(0) + corners.max(0)) / 2


def _star(centre: np.ndarray, size: float, angle: float) -> np.ndarray:
    outer = _regular(5, angle - np.pi / 2)
    inner = _regular(5, angle - np.pi / 2 + np.pi / 5) * 0.45
    points = np.stack([outer, inner], axis=1).reshape(-1, 2)  # alternate tips and notches
    return centre + points * size / 2


def _hexagon(centre: np.ndarray, size: float, angle: float) -> np.ndarray:
    return centre + _regular(6, angle) * size / 2


def _cross(centre: np.ndarray, size: float, angle: float) -> np.ndarray:
    a, b = 0.5, 0.17  # arm half-length and half-width, in units of size
    outline = np.array(
        [[b, a], [-b, a], [-b, b], [-a, b], [-a, -b], [-b, -b], [-b, -a], [b, -a], [b, -b],
         [a, -b], [a, b], [b, b]]
    )  # fmt: skip
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return centre + outline @ rotation.T * size


SHAPES: dict[str, ShapeFunction] = {
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
    "star": _star,
    "hexagon": _hexagon,
    "cross": _cross,
}


def shape_polygon(
    name: str, rng: np.random.Generator, height: int, width: int, min_size: int
) -> np.ndarray:
    """[K, 2] float32 outline of a randomly sized, placed and rotated shape inside the image."""
    max_size = max(min_size, int(0.45 * min(height, width)))
    size = float(rng.uniform(min_size, max_size))
    margin = size / 2
    centre = rng.uniform([margin, margin], [width - margin, height - margin])
    angle = float(rng.uniform(0, 2 * np.pi))
    return SHAPES[name](centre, size, angle).astype(np.float32)


def _random_colour(rng: np.random.Generator, low: int, high: int) -> np.ndarray:
    return rng.integers(low, high, 3).astype(np.float32)


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Broadcastable pixel coordinates: ys [H, 1], xs [1, W] (float32, no full grids)."""
    return (
        np.arange(height, dtype=np.float32)[:, None],
        np.arange(width, dtype=np.float32)[None, :],
    )


def _noise(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    base = _random_colour(rng, 40, 190)
    coarse = rng.normal(0, 25, (max(height // 8, 1), max(width // 8, 1), 3)).astype(np.float32)
    return base + cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)


def _gradient(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    start, end = _random_colour(rng, 30, 200), _random_colour(rng, 30, 200)
    direction = rng.normal(size=2).astype(np.float32)
    ys, xs = _grid(height, width)
    t = xs * direction[0] + ys * direction[1]  # [H, W]
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)  # [H, W] in [0, 1]
    return start + t[..., None] * (end - start)


def _stripes(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    first, second = _random_colour(rng, 30, 200), _random_colour(rng, 30, 200)
    period = float(rng.uniform(6, 30))
    angle = float(rng.uniform(0, np.pi))
    ys, xs = _grid(height, width)
    phase = (xs * np.cos(angle) + ys * np.sin(angle)) / period  # [H, W]
    weight = (0.5 + 0.5 * np.sin(2 * np.pi * phase))[..., None]  # [H, W, 1]
    return first * weight + second * (1 - weight)


def _checks(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    first, second = _random_colour(rng, 30, 200), _random_colour(rng, 30, 200)
    cell = int(rng.integers(8, 32))
    ys, xs = _grid(height, width)
    parity = ((xs // cell + ys // cell) % 2)[..., None]  # [H, W, 1]
    return np.where(parity == 1, first, second)


TEXTURES: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "noise": _noise,
    "gradient": _gradient,
    "stripes": _stripes,
    "checks": _checks,
}


def draw_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """[H, W, 3] uint8 textured background (random texture kind and colours)."""
    name = list(TEXTURES)[int(rng.integers(len(TEXTURES)))]
    return np.clip(TEXTURES[name](rng, height, width), 0, 255).astype(np.uint8)
