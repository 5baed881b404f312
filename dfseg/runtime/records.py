"""JSON records of detections: one home for what `infer`'s JSONL and `dfseg serve` return, so a
server response equals the JSONL line of the same image."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from dfseg.structures import Detections

MaskFormat = Literal["none", "polygons", "rle"]
MASK_FORMATS: tuple[MaskFormat, ...] = ("none", "polygons", "rle")
POLYGON_TOLERANCE = 0.5  # Douglas-Peucker pixels: outlines a few times smaller, same IoU to 1e-3


def detection_records(
    detections: Detections, masks: MaskFormat = "polygons"
) -> list[dict[str, Any]]:
    """One dict per detection: `label`, `name`, `score`, `box_xyxy` (original pixels) and, for a
    segmentation model, its mask as `polygons` ([[[x, y], ...], ...] rings, largest first) or
    `rle` (COCO compressed RLE over the original image: {"size": [h, w], "counts": str}).

    Args:
        detections: one image's detections.
        masks: how masks are written ("none": left out; ignored for detection models).
    """
    records = detections.to_records()
    if detections.masks is None or masks == "none":
        return records
    if masks == "polygons":
        polygons = detections.polygons(simplify_tolerance=POLYGON_TOLERANCE)
        for record, rings in zip(records, polygons, strict=True):
            record["polygons"] = [np.round(ring.astype(np.float64), 1).tolist() for ring in rings]
    else:
        from dfseg.ops.masks import mask_to_rle  # pycocotools only when asked

        for record, mask in zip(records, detections.masks, strict=True):
            rle = mask_to_rle(mask)
            record["rle"] = {"size": list(rle["size"]), "counts": rle["counts"]}
    return records
