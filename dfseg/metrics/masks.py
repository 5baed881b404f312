"""Instance masks as COCO run-length encodings, the form every mask metric works on.

pycocotools' C routines (IoU, area, decode) take RLE dicts `{"size": [H, W], "counts": bytes}`;
everything here converts to that form once so evaluation never touches dense [N, H, W] stacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from dfseg.metrics.errors import MetricsInputError
from dfseg.structures.annotations import RLE, Polygons

CocoRle = dict[str, Any]
"""A compressed COCO RLE: {"size": [H, W], "counts": bytes}."""

AREA_CHUNK = 255

MaskInput = np.ndarray | Sequence[RLE | CocoRle]
"""Masks of one image: a bool [N, H, W] array or N RLEs (dfseg `RLE` or pycocotools dicts)."""


def encode_bool_masks(masks: np.ndarray) -> list[CocoRle]:
    """Encode a dense stack.

    Args:
        masks: [N, H, W] bool (or 0/1 integers) at the image's pixel grid.

    Returns:
        N compressed RLE dicts.
    """
    if masks.ndim != 3:
        raise MetricsInputError(f"masks must be [N, H, W], got shape {masks.shape}")
    if len(masks) == 0:
        return []
    stacked = np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8))  # [H, W, N]
    return list(mask_utils.encode(stacked))


def rle_from_structure(rle: RLE) -> CocoRle:
    """dfseg `RLE` (compressed string or uncompressed run lengths) -> compressed COCO RLE."""
    if isinstance(rle.counts, str):
        return {"size": [rle.height, rle.width], "counts": rle.counts.encode("ascii")}
    uncompressed = {"size": [rle.height, rle.width], "counts": list(rle.counts)}
    return dict(mask_utils.frPyObjects(uncompressed, rle.height, rle.width))


def rle_from_coco_dict(rle: CocoRle) -> CocoRle:
    """Any pycocotools RLE dict (compressed str/bytes or uncompressed list counts) -> compressed."""
    if "size" not in rle or "counts" not in rle:
        raise MetricsInputError(f"an RLE dict needs 'size' and 'counts' keys, got {sorted(rle)}")
    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        return dict(
            mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
        )
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    return {"size": [height, width], "counts": counts}


def rle_from_polygons(polygons: Polygons, height: int, width: int) -> CocoRle:
    """Rasterise one instance's rings (absolute pixel xy) the way pycocotools does for COCO GT."""
    rings = [np.asarray(ring, dtype=np.float64).reshape(-1).tolist() for ring in polygons.rings]
    rings = [ring for ring in rings if len(ring) >= 6]
    if not rings:
        return rle_from_boxes_xyxy(np.zeros((1, 4)), height, width)[0]
    return dict(mask_utils.merge(mask_utils.frPyObjects(rings, height, width)))


def rle_from_boxes_xyxy(boxes_xyxy: np.ndarray, height: int, width: int) -> list[CocoRle]:
    """Filled rectangles, for instances that have a box but no outline. [N, 4] xyxy pixels."""
    if len(boxes_xyxy) == 0:
        return []
    boxes = np.asarray(boxes_xyxy, dtype=np.float64)
    boxes_xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)  # [N, 4]
    return list(mask_utils.frPyObjects(boxes_xywh, height, width))


def to_rles(masks: MaskInput, expected: int, where: str) -> list[CocoRle]:
    """Normalise one image's masks to compressed RLE dicts.

    Args:
        masks: bool [N, H, W] array, or N entries that are dfseg `RLE`s or pycocotools dicts.
        expected: N, the number of boxes the masks belong to.
        where: names the input in error messages ("image 3 predictions").
    """
    if isinstance(masks, np.ndarray):
        if masks.ndim != 3 or len(masks) != expected:
            raise MetricsInputError(
                f"{where}: masks must be a [N, H, W] array with N={expected} (one per box), "
                f"got shape {masks.shape}"
            )
        return encode_bool_masks(masks)
    if len(masks) != expected:
        raise MetricsInputError(f"{where}: {len(masks)} masks for {expected} boxes; give one each")
    rles: list[CocoRle] = []
    for mask in masks:
        if isinstance(mask, RLE):
            rles.append(rle_from_structure(mask))
        elif isinstance(mask, dict):
            rles.append(rle_from_coco_dict(mask))
        else:
            raise MetricsInputError(
                f"{where}: a mask entry is {type(mask).__name__}; use dfseg RLE or a COCO RLE dict"
            )
    return rles


def rle_sizes(rles: Sequence[CocoRle]) -> set[tuple[int, int]]:
    """The distinct (H, W) of a list of RLEs."""
    return {(int(r["size"][0]), int(r["size"][1])) for r in rles}


def rle_areas(rles: Sequence[CocoRle]) -> np.ndarray:
    """[N] float64 pixel counts."""
    if not rles:
        return np.zeros((0,), dtype=np.float64)
    # pycocotools 2.0.11 `area` overflows a uint8 counter beyond 255 masks per call.
    chunks = [list(rles[i : i + AREA_CHUNK]) for i in range(0, len(rles), AREA_CHUNK)]
    return np.concatenate([np.asarray(mask_utils.area(c), dtype=np.float64) for c in chunks])


def decode_rles(rles: Sequence[CocoRle]) -> np.ndarray:
    """[N, H, W] bool dense masks (for drawing)."""
    if not rles:
        return np.zeros((0, 0, 0), dtype=bool)
    return np.asarray(mask_utils.decode(list(rles)), dtype=bool).transpose(2, 0, 1)
