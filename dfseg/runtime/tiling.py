"""Tiled (sliced) inference: a large image is cut into overlapping tiles that each go through
the model at its input size, so small objects keep their pixels; detections are mapped back
and merged across tiles, and an object cut by tile borders becomes one detection whose mask is
stitched from its parts.

Merging ("fuse", the default) is greedy, best score first, per class: a detection joins a group
when it comes from a tile the group has no member of yet and either overlaps the group's box by
IoU >= `match_threshold` (the same object seen whole by two tiles), or one of the two was cut
by an inner tile border and they overlap by intersection over the smaller box >= the threshold
(two parts of one object; IoU of parts is low). The group's mask is the union of its members'
masks, its box their union, its score the best. "nms" keeps the best-scoring detection of each
overlapping set instead (parts cut by borders stay separate). With `whole_image`, the image is
also predicted whole; its detections find the large objects and join groups like a tile's,
but where tiles saw an object their finer masks and boxes are used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from dfseg.ops.box_overlap import box_ios_xyxy, box_iou_xyxy
from dfseg.ops.nms import nms_keep
from dfseg.ops.tiles import tile_windows, touches_inner_edge
from dfseg.runtime.postprocess import PostprocessSettings
from dfseg.structures import Detections

WHOLE_IMAGE = -1  # the source id of whole-image detections
EDGE_MARGIN = 0.01  # of the tile side: a box this close to an inner border was cut by it

PredictArrays = Callable[[Sequence[np.ndarray], Sequence[PostprocessSettings]], list[Detections]]


@dataclass(frozen=True)
class TileSettings:
    """How to tile (see the module docstring).

    Attributes:
        size: tile side in original-image pixels.
        overlap: fraction of a tile neighbouring tiles share, in [0, 1).
        whole_image: also predict the whole image (downscaled to the model's input).
        merge: "fuse" (parts joined, masks stitched) or "nms" (best copy kept).
        match_threshold: overlap at which two detections are one object.
        batch: tiles per model call.
    """

    size: int
    overlap: float = 0.2
    whole_image: bool = False
    merge: Literal["fuse", "nms"] = "fuse"
    match_threshold: float = 0.5
    batch: int = 8


def tile_settings(config: Mapping[str, Any], batch: int = 8) -> TileSettings | None:
    """`TileSettings` from the fields of a project's `TileConfig` (size None or missing: no
    tiling); `batch` tiles per model call."""
    if config.get("size") is None:
        return None
    known = {"size", "overlap", "whole_image", "merge", "match_threshold"}
    return TileSettings(**{k: v for k, v in config.items() if k in known}, batch=max(1, batch))


@dataclass
class _Pieces:
    """All tiles' detections in image pixels, masks still tile-sized."""

    boxes: np.ndarray  # [N, 4] image pixels
    scores: np.ndarray  # [N]
    labels: np.ndarray  # [N]
    sources: np.ndarray  # [N] tile index, WHOLE_IMAGE for the whole image
    cut: np.ndarray  # [N] bool: touches an inner tile border
    masks: list[np.ndarray | None]  # per detection: [h, w] bool over its tile, or None
    windows: np.ndarray  # [T, 4] tile windows


def predict_tiled(
    predict: PredictArrays,
    image: np.ndarray,
    settings: PostprocessSettings,
    tiling: TileSettings,
    class_names: list[str],
    with_masks: bool,
) -> Detections:
    """Detections of one [H, W, 3] uint8 BGR image predicted tile by tile.

    Args:
        predict: runs a batch of arrays with their settings (`Predictor`'s untiled path).
        image: the whole image.
        settings: this image's thresholds; each tile applies them, then `max_det` is applied
            again after merging.
        tiling: tile size, overlap and merging.
        class_names, with_masks: the model's classes and whether it predicts masks.

    Returns:
        Detections in original-image pixels, masks (if any) at the original size.
    """
    height, width = image.shape[:2]
    windows = tile_windows(height, width, tiling.size, tiling.overlap)
    if len(windows) == 1:
        return predict([image], [settings])[0]
    crops = [np.ascontiguousarray(image[y1:y2, x1:x2]) for x1, y1, x2, y2 in windows]
    found: list[Detections] = []
    for start in range(0, len(crops), tiling.batch):
        chunk = crops[start : start + tiling.batch]
        found += predict(chunk, [settings] * len(chunk))
    whole = predict([image], [settings])[0] if tiling.whole_image else None
    pieces = _pieces(found, windows, whole, (height, width), tiling.size)
    if tiling.merge == "nms":
        order = nms_keep(pieces.boxes, pieces.scores, pieces.labels, tiling.match_threshold)
        groups = [[int(i)] for i in order]
    else:
        groups = fuse_groups(pieces, tiling.match_threshold)
    groups = groups[: settings.max_det]
    return _assemble(pieces, groups, class_names, (height, width), with_masks)


def _pieces(
    found: list[Detections],
    windows: np.ndarray,
    whole: Detections | None,
    image_hw: tuple[int, int],
    tile_size: int,
) -> _Pieces:
    boxes, scores, labels, sources, cut = [], [], [], [], []
    masks: list[np.ndarray | None] = []
    margin = max(2.0, EDGE_MARGIN * tile_size)
    for index, (detections, window) in enumerate(zip(found, windows, strict=True)):
        shifted = detections.boxes_xyxy + np.array([window[0], window[1]] * 2, np.float32)
        boxes.append(shifted)
        scores.append(detections.scores)
        labels.append(detections.labels)
        sources.append(np.full(len(detections), index))
        cut.append(touches_inner_edge(shifted, window, image_hw, margin))
        masks += (
            list(detections.masks) if detections.masks is not None else [None] * len(detections)
        )
    if whole is not None:
        boxes.append(whole.boxes_xyxy)
        scores.append(whole.scores)
        labels.append(whole.labels)
        sources.append(np.full(len(whole), WHOLE_IMAGE))
        cut.append(np.zeros(len(whole), dtype=bool))
        masks += _mask_list(whole)
    return _Pieces(
        boxes=np.concatenate(boxes).astype(np.float32).reshape(-1, 4),
        scores=np.concatenate(scores).astype(np.float32),
        labels=np.concatenate(labels).astype(np.int64),
        sources=np.concatenate(sources).astype(np.int64),
        cut=np.concatenate(cut),
        masks=masks,
        windows=windows,
    )


def _mask_list(detections: Detections) -> list[np.ndarray | None]:
    if detections.masks is None:
        return [None] * len(detections)
    return list(detections.masks)


def fuse_groups(pieces: _Pieces, threshold: float) -> list[list[int]]:
    """Greedy grouping of detections that are one object (see the module docstring); groups
    in descending order of their best score, each listing detection indices."""
    order = np.argsort(-pieces.scores, kind="stable")
    iou = box_iou_xyxy(pieces.boxes, pieces.boxes)  # [N, N]
    ios = box_ios_xyxy(pieces.boxes, pieces.boxes)  # [N, N]
    taken = np.zeros(len(order), dtype=bool)
    groups: list[list[int]] = []
    for leader in order:
        if taken[leader]:
            continue
        taken[leader] = True
        group = [int(leader)]
        for other in order:
            if taken[other] or pieces.labels[other] != pieces.labels[leader]:
                continue
            if int(pieces.sources[other]) in {int(pieces.sources[m]) for m in group}:
                continue  # one tile does not see one object twice
            if _joins(int(other), group, pieces, iou, ios, threshold):
                taken[other] = True
                group.append(int(other))
        groups.append(group)
    return groups


def _joins(
    other: int,
    group: list[int],
    pieces: _Pieces,
    iou: np.ndarray,
    ios: np.ndarray,
    threshold: float,
) -> bool:
    for member in group:
        if iou[other, member] >= threshold:
            return True
        if (pieces.cut[other] or pieces.cut[member]) and ios[other, member] >= threshold:
            return True
    return False


def _assemble(
    pieces: _Pieces,
    groups: list[list[int]],
    class_names: list[str],
    image_hw: tuple[int, int],
    with_masks: bool,
) -> Detections:
    height, width = image_hw
    if not groups:
        return Detections.empty(class_names, image_hw, with_masks)
    boxes = np.zeros((len(groups), 4), np.float32)
    masks = np.zeros((len(groups), height, width), bool) if with_masks else None
    for row, group in enumerate(groups):
        tiled = [m for m in group if pieces.sources[m] != WHOLE_IMAGE]
        used = tiled or group  # tiles see finer detail than the downscaled whole image
        chosen = pieces.boxes[used]
        boxes[row] = [
            chosen[:, 0].min(),
            chosen[:, 1].min(),
            chosen[:, 2].max(),
            chosen[:, 3].max(),
        ]
        if masks is not None:
            for member in used:
                _paste(masks[row], pieces, member)
    best = [group[0] for group in groups]  # leaders: the best score of each group
    return Detections(
        boxes_xyxy=boxes,
        scores=pieces.scores[best],
        labels=pieces.labels[best],
        class_names=class_names,
        image_size=image_hw,
        masks=masks,
    )


def _paste(canvas: np.ndarray, pieces: _Pieces, member: int) -> None:
    mask = pieces.masks[member]
    if mask is None:
        return
    source = int(pieces.sources[member])
    if source == WHOLE_IMAGE:
        canvas |= mask
        return
    x1, y1, x2, y2 = (int(v) for v in pieces.windows[source])
    canvas[y1:y2, x1:x2] |= mask
