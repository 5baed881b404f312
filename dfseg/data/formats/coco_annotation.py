"""One COCO `annotations` entry -> one instance (box, polygons or RLE, crowd flag)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dfseg.data.formats.instances import (
    InstanceBuffer,
    box_is_degenerate,
    classify_range,
    clip_box_xyxy,
    clip_points,
    coordinate_tolerance,
    negligible_excess,
    ring_is_degenerate,
)
from dfseg.data.formats.issues import IssueLog
from dfseg.ops.masks import polygons_to_box_xyxy, rle_to_box_xyxy
from dfseg.structures import RLE, Polygons, Segment


@dataclass(frozen=True)
class AnnotationContext:
    """What one image's annotations are read against."""

    json_path: Path
    image_path: Path
    width: int
    height: int
    category_map: dict[int, int]
    log: IssueLog

    def error(self, code: str, entry: dict[str, Any], message: str) -> None:
        self.log.add(code, self.json_path, f"{self._where(entry)}: {message}")

    def _where(self, entry: dict[str, Any]) -> str:
        return f"annotation id {entry.get('id', '?')} (image {self.image_path.name})"


class _Malformed(ValueError):
    """An annotation field that cannot be used (message says which and why)."""

    def __init__(self, message: str, code: str = "bad-annotation") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def read_annotation(
    entry: dict[str, Any], context: AnnotationContext, buffer: InstanceBuffer
) -> None:
    """Add `entry` to `buffer`, or log why not (an error drops the annotation: `dropped`)."""
    category = entry.get("category_id")
    if category not in context.category_map:
        context.error("unknown-class", entry, f"category_id {category!r} is not in `categories`")
        buffer.dropped += 1
        return
    try:
        segment = _read_segmentation(entry.get("segmentation"), entry, context)
        box = _read_bbox(entry.get("bbox"), entry, context)
    except _Malformed as problem:
        context.error(problem.code, entry, problem.message)
        buffer.dropped += 1
        return
    if box is None or box_is_degenerate(box):
        box = _box_of_segment(segment, context)
    if box is None or box_is_degenerate(box):
        context.error("degenerate", entry, "zero-area box without a usable segmentation dropped")
        return
    buffer.add(context.category_map[category], box, segment, iscrowd=bool(entry.get("iscrowd")))


def _numbers(value: Any, what: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as error:
        raise _Malformed(f"{what} must be a list of numbers") from error
    if not np.isfinite(array).all():
        raise _Malformed(f"{what} contains nan or inf", "bad-number")
    return array


def _check_range(
    points_xy: np.ndarray, what: str, entry: dict[str, Any], context: AnnotationContext
) -> np.ndarray:
    """Clip slightly-out points (warning) or raise for clearly wrong ones; [K, 2] pixels."""
    scale = np.array([context.width, context.height], dtype=np.float64)
    verdict = classify_range(
        points_xy / scale,
        coordinate_tolerance(context.width, context.height),
        negligible=negligible_excess(context.width, context.height),
    )
    if verdict == "out-of-range":
        raise _Malformed(
            f"{what} reaches [{points_xy.min():g}, {points_xy.max():g}], outside the "
            f"{context.width}x{context.height} image",
            "out-of-range",
        )
    if verdict == "clip":
        context.error("clipped", entry, f"{what} clipped to the image border")
    return clip_points(points_xy, context.width, context.height)


def _read_bbox(value: Any, entry: dict[str, Any], context: AnnotationContext) -> np.ndarray | None:
    if value is None or (isinstance(value, list) and not value):
        return None
    x, y, w, h = _numbers_of_length(value, 4, "bbox")
    corners = np.array([[x, y], [x + w, y + h]], dtype=np.float64)
    if w <= 0 or h <= 0:
        return np.array([x, y, x + w, y + h], dtype=np.float32)  # degenerate: caller decides
    return clip_box_xyxy(
        _check_range(corners, "bbox", entry, context).ravel(), context.width, context.height
    )


def _numbers_of_length(value: Any, length: int, what: str) -> np.ndarray:
    numbers = _numbers(value, what)
    if len(numbers) != length:
        raise _Malformed(f"{what} must have {length} numbers, got {len(numbers)}")
    return numbers


def _read_segmentation(
    value: Any, entry: dict[str, Any], context: AnnotationContext
) -> Segment | None:
    if value is None or (isinstance(value, list) and not value):
        return None
    if isinstance(value, dict):
        return _read_rle(value, context)
    if not isinstance(value, list):
        raise _Malformed("segmentation must be a list of polygons or an RLE object")
    rings = []
    for index, flat in enumerate(value):
        numbers = _numbers(flat, f"segmentation polygon {index}")
        if len(numbers) % 2:
            raise _Malformed(
                f"segmentation polygon {index} has an odd number of coordinates", "odd-coordinates"
            )
        ring = _check_range(numbers.reshape(-1, 2), f"segmentation polygon {index}", entry, context)
        if len(ring) < 3 or ring_is_degenerate(ring):
            context.error("degenerate", entry, f"segmentation polygon {index} has no area; dropped")
            continue
        rings.append(ring.astype(np.float32))
    return Polygons(rings=tuple(rings)) if rings else None


def _read_rle(value: dict[str, Any], context: AnnotationContext) -> RLE:
    size, counts = value.get("size"), value.get("counts")
    if not isinstance(size, list) or len(size) != 2:
        raise _Malformed("RLE segmentation needs `size: [height, width]`")
    if [int(size[0]), int(size[1])] != [context.height, context.width]:
        raise _Malformed(
            f"RLE size {size[0]}x{size[1]} (HxW) differs from the image "
            f"{context.height}x{context.width}",
        )
    if isinstance(counts, str):
        return RLE(counts=counts, height=context.height, width=context.width)
    if isinstance(counts, list) and all(isinstance(c, int) for c in counts):
        if sum(counts) != context.height * context.width:
            raise _Malformed(f"RLE counts add up to {sum(counts)}, not height x width")
        return RLE(counts=list(counts), height=context.height, width=context.width)
    raise _Malformed("RLE `counts` must be a string (compressed) or a list of integers")


def _box_of_segment(segment: Segment | None, context: AnnotationContext) -> np.ndarray | None:
    if segment is None:
        return None
    if isinstance(segment, Polygons):
        box = polygons_to_box_xyxy(segment.rings)
    else:
        box = rle_to_box_xyxy(segment)
    return clip_box_xyxy(box, context.width, context.height)
