"""Building one image's `ImageAnnotation` instance by instance, with the shared coordinate policy.

Coordinate policy (all formats): values within `coordinate_tolerance` (2% of the image size, at
least 1.5 px) outside the image are clipped with a `clipped` warning; values further out are errors
(`out-of-range`, or `not-normalised` when YOLO values look like pixels). Box extents computed from
a YOLO centre and size that stick out of the image are clipped silently: annotation tools produce
them when a box touches the border.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from dfseg.ops.masks import polygon_area
from dfseg.structures import ImageAnnotation, Segment

COORDINATE_TOLERANCE = 0.02
# ... but at least this many pixels, so a 0-based VOC box (1 px out) is clipped on small images.
COORDINATE_TOLERANCE_PIXELS = 1.5
# YOLO values above this are taken for pixel coordinates written by mistake.
PIXEL_LIKE_THRESHOLD = 2.0
MIN_POLYGON_AREA = 1e-3  # px^2; collinear points give ~0 up to rounding

RangeVerdict = Literal["ok", "clip", "not-normalised", "out-of-range"]


def coordinate_tolerance(width: int, height: int) -> float:
    """How far (normalised) coordinates may stick out of the image and still be clipped."""
    return max(COORDINATE_TOLERANCE, COORDINATE_TOLERANCE_PIXELS / max(min(width, height), 1))


def negligible_excess(width: int, height: int) -> float:
    """Up to one pixel outside the image (normalised): clipped without a warning (labelling
    tools and 1-based VOC boxes produce it all the time)."""
    return 1.0 / max(width, height, 1)


def classify_range(
    normalised: np.ndarray,
    tolerance: float,
    allow_pixel_guess: bool = False,
    negligible: float = 0.0,
) -> RangeVerdict:
    """Where normalised coordinates lie relative to [0, 1].

    Args:
        normalised: any shape, coordinates divided by the image width/height.
        tolerance: see `coordinate_tolerance`.
        allow_pixel_guess: report values above `PIXEL_LIKE_THRESHOLD` as `not-normalised`
            (YOLO files), otherwise as `out-of-range`.
        negligible: values at most this far outside are "ok" (clipped silently; see
            `negligible_excess`).
    """
    if normalised.size == 0:
        return "ok"
    low, high = float(normalised.min()), float(normalised.max())
    if low >= -negligible and high <= 1.0 + negligible:
        return "ok"
    if low >= -tolerance and high <= 1.0 + tolerance:
        return "clip"
    if allow_pixel_guess and low >= -tolerance and high > PIXEL_LIKE_THRESHOLD:
        return "not-normalised"
    return "out-of-range"


def clip_points(points_xy: np.ndarray, width: int, height: int) -> np.ndarray:
    """[K, 2] (x, y) absolute pixels clipped into [0, width] x [0, height], float32."""
    upper = np.array([width, height], dtype=np.float32)
    return np.clip(points_xy.astype(np.float32), 0.0, upper)


def clip_box_xyxy(box_xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """[4] xyxy absolute pixels clipped to the image, float32."""
    return clip_points(np.asarray(box_xyxy, dtype=np.float32).reshape(2, 2), width, height).ravel()


def box_is_degenerate(box_xyxy: np.ndarray) -> bool:
    return bool(box_xyxy[2] <= box_xyxy[0] or box_xyxy[3] <= box_xyxy[1])


def ring_is_degenerate(ring_xy: np.ndarray) -> bool:
    return polygon_area(ring_xy) < MIN_POLYGON_AREA


@dataclass
class InstanceBuffer:
    """Instances of one image collected in file order; `dropped` counts the rows (objects,
    annotations) left out for an error: the image keeps its other rows."""

    labels: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    segments: list[Segment | None] = field(default_factory=list)
    iscrowd: list[bool] = field(default_factory=list)
    difficult: list[bool] = field(default_factory=list)
    dropped: int = 0

    def add(
        self,
        label: int,
        box_xyxy: np.ndarray,
        segment: Segment | None = None,
        iscrowd: bool = False,
        difficult: bool = False,
    ) -> None:
        """Append one instance: `box_xyxy` [4] absolute pixels (already clipped)."""
        self.labels.append(label)
        self.boxes.append(np.asarray(box_xyxy, dtype=np.float32).reshape(4))
        self.segments.append(segment)
        self.iscrowd.append(iscrowd)
        self.difficult.append(difficult)

    def to_annotation(
        self, image_path: Path, width: int, height: int, label_path: Path | None
    ) -> ImageAnnotation:
        count = len(self.labels)
        boxes = np.stack(self.boxes) if count else np.zeros((0, 4), np.float32)  # [N, 4]
        return ImageAnnotation(
            image_path=image_path,
            width=width,
            height=height,
            labels=np.asarray(self.labels, dtype=np.int64).reshape(count),
            boxes_xyxy=boxes.astype(np.float32),
            segments=list(self.segments),
            iscrowd=np.asarray(self.iscrowd, dtype=bool).reshape(count),
            difficult=np.asarray(self.difficult, dtype=bool).reshape(count),
            label_path=label_path,
        )
