"""Instance masks: rasterising polygons and RLE, tracing polygons back, boxes and areas of masks.

Pixel convention (used everywhere in dfseg): coordinates are continuous absolute pixels with the
origin at the top-left corner of the top-left pixel, so pixel (row i, column j) spans
[j, j + 1) x [i, i + 1) and has its centre at (j + 0.5, i + 0.5). A polygon covers the pixels
whose centres lie inside it: the box polygon (x1, y1), (x2, y1), (x2, y2), (x1, y2) with integer
corners covers columns x1 .. x2 - 1 and rows y1 .. y2 - 1, and the box of a mask is reported with
pixel edges (x2 = last column + 1), so polygon -> mask -> box gives the polygon's bounds back.

Polygons are rasterised with pycocotools (`frPyObjects`), the same rasteriser COCO mask evaluation
uses for ground truth, which follows the centre convention above. `cv2.fillPoly` is not used for
this: it rounds vertices and fills inclusively, so a 3 x 4 pixel box polygon becomes 4 x 5 pixels
(every mask grows by about half a pixel all round).

Only plain numpy / OpenCV / pycocotools: this module imports nothing of dfseg, so it accepts any
object shaped like `dfseg.structures.Polygons` / `RLE` (see the protocols below) and returns RLE in
COCO's dict form (`{"size": [h, w], "counts": str}`), which pycocotools and COCO JSON use as is.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Protocol, TypedDict

import cv2
import numpy as np
from pycocotools import mask as coco_mask


class PolygonRings(Protocol):
    """Anything with `rings`: one or more [K, 2] float (x, y) absolute pixel rings."""

    @property
    def rings(self) -> tuple[np.ndarray, ...]: ...


class RunLengthEncoding(Protocol):
    """Anything with COCO run-length `counts` (compressed str or uncompressed list) and a size."""

    @property
    def counts(self) -> str | list[int]: ...

    @property
    def height(self) -> int: ...

    @property
    def width(self) -> int: ...


class CocoRLE(TypedDict):
    """COCO's compressed RLE dict: `size` is [height, width], `counts` the compressed string."""

    size: list[int]
    counts: str


def polygon_area(ring: np.ndarray) -> float:
    """Area of one ring by the shoelace formula.

    Args:
        ring: [K, 2] (x, y) vertices, any unit; fewer than 3 vertices give 0.

    Returns:
        Absolute area in the input unit squared (orientation does not matter).
    """
    points = np.asarray(ring, dtype=np.float64).reshape(-1, 2)  # [K, 2]
    if len(points) < 3:
        return 0.0
    x, y = points[:, 0], points[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def polygons_to_box_xyxy(rings: Sequence[np.ndarray]) -> np.ndarray:
    """Bounds of all rings: [4] float32 xyxy in the rings' unit (zeros when there are no points).

    Under the pixel convention this equals the box of the rasterised mask (within a pixel).
    """
    points = [np.asarray(r, dtype=np.float32).reshape(-1, 2) for r in rings if len(r)]
    if not points:
        return np.zeros(4, dtype=np.float32)
    stacked = np.concatenate(points)  # [sum K, 2]
    return np.concatenate([stacked.min(0), stacked.max(0)]).astype(np.float32)


def merge_rings(rings: Sequence[np.ndarray]) -> np.ndarray:
    """Join several non-overlapping rings into one ring (for formats with one polygon per object).

    Each further ring is attached to the path at its nearest vertex pair by a zero-width bridge
    (walked out and back), so rasterising the result gives the union of the rings. Overlapping
    rings would cancel out where they overlap; `mask_to_polygons` never produces those.

    Args:
        rings: each [K, 2] (x, y); rings with fewer than 3 points are skipped.

    Returns:
        [M, 2] float32 ring (empty [0, 2] when no ring has 3 points).
    """
    kept = [np.asarray(r, dtype=np.float32).reshape(-1, 2) for r in rings]
    kept = [r for r in kept if len(r) >= 3]
    if not kept:
        return np.zeros((0, 2), dtype=np.float32)
    path = kept[0]
    for ring in kept[1:]:
        distances = ((path[:, None, :] - ring[None, :, :]) ** 2).sum(-1)  # [P, K]
        i, j = np.unravel_index(int(np.argmin(distances)), distances.shape)
        loop = np.concatenate([ring[j:], ring[:j], ring[j : j + 1]])  # around, back to start
        path = np.concatenate([path[: i + 1], loop, path[i:]])
    return path.astype(np.float32)


def polygon_to_mask(rings: Sequence[np.ndarray], height: int, width: int) -> np.ndarray:
    """Rasterise the union of rings.

    Args:
        rings: each [K, 2] (x, y) absolute pixels; rings with K < 3 are ignored. Parts outside the
            image are cut off.
        height, width: output size in pixels.

    Returns:
        [height, width] uint8 in {0, 1}: 1 where the pixel centre lies inside a ring.
    """
    flat = [
        np.asarray(r, dtype=np.float64).reshape(-1).tolist()
        for r in rings
        if np.asarray(r).reshape(-1, 2).shape[0] >= 3
    ]
    if not flat or height <= 0 or width <= 0:
        return np.zeros((max(height, 0), max(width, 0)), dtype=np.uint8)
    # Every list has >= 6 numbers, so pycocotools takes the polygon path (a 4-number list would be
    # read as a bbox).
    encoded = coco_mask.frPyObjects(flat, height, width)
    merged = coco_mask.merge(encoded) if len(encoded) > 1 else encoded[0]
    return _decode(merged)


def rle_to_coco(rle: RunLengthEncoding) -> CocoRLE:
    """Compressed COCO dict of an RLE given compressed (str) or uncompressed (list) counts."""
    size = [int(rle.height), int(rle.width)]
    if isinstance(rle.counts, str):
        return {"size": size, "counts": rle.counts}
    compressed = coco_mask.frPyObjects({"size": size, "counts": list(rle.counts)}, *size)
    counts = compressed["counts"]
    return {"size": size, "counts": counts.decode() if isinstance(counts, bytes) else counts}


def _as_coco(rle: RunLengthEncoding | CocoRLE) -> dict:
    """pycocotools-ready dict (counts as bytes) from either RLE form."""
    coco = dict(rle) if isinstance(rle, dict) else dict(rle_to_coco(rle))
    if isinstance(coco["counts"], str):
        coco["counts"] = coco["counts"].encode()
    return coco


def _decode(coco: dict) -> np.ndarray:
    """pycocotools decode -> C-ordered [H, W] uint8, without its numpy-2 copy= deprecation noise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return np.ascontiguousarray(coco_mask.decode(coco))


def rle_to_mask(rle: RunLengthEncoding | CocoRLE) -> np.ndarray:
    """Decode an RLE (object with counts/height/width, or a COCO dict) -> [H, W] uint8 {0, 1}."""
    return _decode(_as_coco(rle))


def rle_area(rle: RunLengthEncoding | CocoRLE) -> int:
    """Number of foreground pixels of an RLE (either form)."""
    return int(coco_mask.area(_as_coco(rle)))


def rle_to_box_xyxy(rle: RunLengthEncoding | CocoRLE) -> np.ndarray:
    """[4] float32 xyxy absolute pixels of an RLE with pixel edges (x2 = last column + 1).

    Zeros for an empty mask.
    """
    x, y, w, h = coco_mask.toBbox(_as_coco(rle)).tolist()
    return np.array([x, y, x + w, y + h], dtype=np.float32)


def mask_to_rle(mask: np.ndarray) -> CocoRLE:
    """Encode a [H, W] mask (any dtype; nonzero = foreground) as a compressed COCO RLE dict."""
    binary = np.asfortranarray(np.asarray(mask) != 0, dtype=np.uint8)  # [H, W]
    encoded = coco_mask.encode(binary)
    counts = encoded["counts"]
    return {
        "size": [int(binary.shape[0]), int(binary.shape[1])],
        "counts": counts.decode() if isinstance(counts, bytes) else counts,
    }


def segment_to_mask(
    segment: PolygonRings | RunLengthEncoding, height: int, width: int
) -> np.ndarray:
    """Rasterise one instance's segment (`Polygons` or `RLE`) to a binary mask.

    Args:
        segment: polygons in absolute pixels (see the module's pixel convention) or an RLE whose
            size must equal (height, width).
        height, width: the image size in pixels.

    Returns:
        [height, width] uint8 in {0, 1}.

    Raises:
        ValueError: an RLE of another size, or an object that is neither form.
    """
    if hasattr(segment, "rings"):
        return polygon_to_mask(segment.rings, height, width)
    if hasattr(segment, "counts"):
        if (segment.height, segment.width) != (height, width):
            raise ValueError(
                f"RLE size {segment.height}x{segment.width} (HxW) does not match the image "
                f"{height}x{width}; the mask was encoded for another image size"
            )
        return rle_to_mask(segment)
    raise ValueError(f"expected Polygons or RLE, got {type(segment).__name__}")


def masks_to_boxes_xyxy(masks: np.ndarray) -> np.ndarray:
    """Tight boxes of binary masks.

    Args:
        masks: [N, H, W] (any dtype; nonzero = foreground).

    Returns:
        [N, 4] float32 xyxy absolute pixels with pixel edges: x1 = first column,
        x2 = last column + 1 (same for y); all zeros for an empty mask.
    """
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must be [N, H, W], got shape {masks.shape}")
    n, height, width = masks.shape
    boxes = np.zeros((n, 4), dtype=np.float32)
    if n == 0 or height == 0 or width == 0:
        return boxes
    foreground = masks != 0
    rows = foreground.any(axis=2)  # [N, H]
    cols = foreground.any(axis=1)  # [N, W]
    nonempty = rows.any(axis=1)  # [N]
    boxes[:, 0] = cols.argmax(axis=1)
    boxes[:, 1] = rows.argmax(axis=1)
    boxes[:, 2] = width - cols[:, ::-1].argmax(axis=1)
    boxes[:, 3] = height - rows[:, ::-1].argmax(axis=1)
    boxes[~nonempty] = 0.0
    return boxes


def mask_to_polygons(
    mask: np.ndarray, min_area: float = 1.0, simplify_tolerance: float = 0.0
) -> list[np.ndarray]:
    """Outer outlines of a binary mask's 8-connected components (holes are not represented).

    The outline is traced on the mask upsampled 2x, so it runs a quarter pixel inside the pixel
    edges: every foreground pixel centre is inside it and every background centre outside, hence
    polygon -> `polygon_to_mask` gives the same mask back (holes filled) when
    `simplify_tolerance` is 0.

    Args:
        mask: [H, W] (any dtype; nonzero = foreground).
        min_area: components with fewer foreground pixels than this are dropped.
        simplify_tolerance: if > 0, Douglas-Peucker tolerance in pixels (fewer vertices, outline
            off by up to that much).

    Returns:
        One [K, 2] float32 (x, y) absolute pixel ring per kept component, K >= 3, largest first.
    """
    binary = (np.asarray(mask) != 0).astype(np.uint8)  # [H, W]
    if binary.ndim != 2:
        raise ValueError(f"mask must be [H, W], got shape {binary.shape}")
    box = masks_to_boxes_xyxy(binary[None])[0].astype(int)  # crop: work on the foreground only
    if box[2] == 0:
        return []
    crop = binary[box[1] : box[3], box[0] : box[2]]  # [h, w]
    _, component_of, stats, _ = cv2.connectedComponentsWithStats(crop, connectivity=8)
    upsampled = np.repeat(np.repeat(crop, 2, axis=0), 2, axis=1)  # [2h, 2w]
    contours, _ = cv2.findContours(upsampled, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    rings: list[tuple[int, np.ndarray]] = []
    for contour in contours:
        col, row = contour[0, 0] // 2
        pixels = int(stats[component_of[row, col], cv2.CC_STAT_AREA])
        if pixels < min_area:
            continue
        if simplify_tolerance > 0:
            contour = cv2.approxPolyDP(contour, 2.0 * simplify_tolerance, closed=True)
        points = contour.reshape(-1, 2).astype(np.float32)  # [K, 2] (x, y), 2x crop grid
        if len(points) >= 3:  # always true unsimplified: a lone pixel traces as 4 corners
            rings.append((pixels, (points + 0.5) / 2.0 + box[:2].astype(np.float32)))
    rings.sort(key=lambda item: -item[0])
    return [ring for _, ring in rings]
