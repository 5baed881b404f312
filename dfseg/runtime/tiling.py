"""Tiled (sliced) inference: a large image is cut into overlapping tiles that each go through
the model at its input size, so small objects keep their pixels; detections are mapped back
and merged across tiles, and an object cut by tile borders becomes one detection whose mask is
stitched from its parts.

Two detections of one class from different tiles are one object when, inside the region both
tiles see, their boxes agree: IoU of the two boxes clipped to the tiles' shared window >=
`match_threshold`. An object seen whole by both tiles passes as by plain IoU; the two parts
of an object cut by a border coincide in the shared strip however little of the object that
strip holds; two neighbouring objects do not. "fuse" (the default) groups detections greedily,
best score first, following such matches from member to member (a long object over three
tiles is one group), at most one member per tile. The group's score is its best; its box and
mask are the union of members scoring at least half the best (lower ones are duplicates that
add nothing). "nms" keeps the best-scoring detection of each overlapping set instead (parts cut
by borders stay separate). With `whole_image`, the image is also predicted whole (its window is
the image): its detections find the large objects and join groups like a tile's, but where
tiles saw an object their finer masks and boxes are used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from dfseg.ops.box_overlap import box_intersections_xyxy, clip_boxes_xyxy, paired_iou_xyxy
from dfseg.ops.nms import nms_keep
from dfseg.ops.tiles import tile_windows
from dfseg.runtime.postprocess import PostprocessSettings
from dfseg.structures import Detections

WHOLE_IMAGE = -1  # the source id of whole-image detections
GEOMETRY_SCORE_RATIO = 0.5  # members scoring less than this x the best add no box or mask

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


def describe_tiling(tiling: TileSettings) -> str:
    """One line for reports: "tiles 640 px, overlap 0.2, fuse (+ whole image)"."""
    whole = " + whole image" if tiling.whole_image else ""
    return f"tiles {tiling.size} px, overlap {tiling.overlap:g}, {tiling.merge}{whole}"


@dataclass
class _Pieces:
    """All tiles' detections in image pixels, masks still tile-sized."""

    boxes: np.ndarray  # [N, 4] image pixels
    scores: np.ndarray  # [N]
    labels: np.ndarray  # [N]
    sources: np.ndarray  # [N] tile index, WHOLE_IMAGE for the whole image
    masks: list[np.ndarray | None]  # per detection: [h, w] bool over its tile, or None
    windows: np.ndarray  # [T, 4] tile windows
    image_hw: tuple[int, int]

    def window_of(self, index: np.ndarray) -> np.ndarray:
        """[P, 4] window of each detection in `index` (the image for whole-image ones)."""
        height, width = self.image_hw
        whole = np.array([0, 0, width, height], dtype=np.float64)
        sources = self.sources[index]
        windows = self.windows[np.clip(sources, 0, None)].astype(np.float64)
        return np.where((sources == WHOLE_IMAGE)[:, None], whole, windows)


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
    pieces = _pieces(found, windows, whole, (height, width))
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
) -> _Pieces:
    boxes, scores, labels, sources = [], [], [], []
    masks: list[np.ndarray | None] = []
    for index, (detections, window) in enumerate(zip(found, windows, strict=True)):
        shifted = detections.boxes_xyxy + np.array([window[0], window[1]] * 2, np.float32)
        boxes.append(shifted)
        scores.append(detections.scores)
        labels.append(detections.labels)
        sources.append(np.full(len(detections), index))
        masks += (
            list(detections.masks) if detections.masks is not None else [None] * len(detections)
        )
    if whole is not None:
        boxes.append(whole.boxes_xyxy)
        scores.append(whole.scores)
        labels.append(whole.labels)
        sources.append(np.full(len(whole), WHOLE_IMAGE))
        masks += _mask_list(whole)
    return _Pieces(
        boxes=np.concatenate(boxes).astype(np.float32).reshape(-1, 4),
        scores=np.concatenate(scores).astype(np.float32),
        labels=np.concatenate(labels).astype(np.int64),
        sources=np.concatenate(sources).astype(np.int64),
        masks=masks,
        windows=windows,
        image_hw=image_hw,
    )


def _mask_list(detections: Detections) -> list[np.ndarray | None]:
    if detections.masks is None:
        return [None] * len(detections)
    return list(detections.masks)


def fuse_groups(pieces: _Pieces, threshold: float) -> list[list[int]]:
    """Greedy grouping of detections that are one object (see the module docstring); groups
    in descending order of their best score, each listing detection indices, best first."""
    joins = _matches(pieces, threshold)  # [N, N] bool
    rank = np.empty(len(pieces.scores), dtype=np.int64)
    rank[np.argsort(-pieces.scores, kind="stable")] = np.arange(len(pieces.scores))
    taken = np.zeros(len(rank), dtype=bool)
    groups: list[list[int]] = []
    for leader in np.argsort(rank):
        if taken[leader]:
            continue
        taken[leader] = True
        group, seen_tiles, frontier = [int(leader)], {int(pieces.sources[leader])}, [int(leader)]
        while frontier:
            member = frontier.pop(0)
            candidates = np.flatnonzero(joins[member] & ~taken)
            for other in candidates[np.argsort(rank[candidates])]:
                if int(pieces.sources[other]) in seen_tiles:
                    continue  # one tile does not see one object twice
                taken[other] = True
                seen_tiles.add(int(pieces.sources[other]))
                group.append(int(other))
                frontier.append(int(other))
        groups.append(group)
    return groups


def _matches(pieces: _Pieces, threshold: float) -> np.ndarray:
    """[N, N] bool: same class, different tiles, and boxes clipped to the two tiles' shared
    window overlapping by IoU >= `threshold`."""
    count = len(pieces.scores)
    joins = np.zeros((count, count), dtype=bool)
    touching = box_intersections_xyxy(pieces.boxes, pieces.boxes) > 0  # [N, N]
    touching &= pieces.labels[:, None] == pieces.labels[None, :]
    touching &= pieces.sources[:, None] != pieces.sources[None, :]
    first, second = np.nonzero(touching)  # candidate pairs only: boxes that meet at all
    if not len(first):
        return joins
    window_a, window_b = pieces.window_of(first), pieces.window_of(second)
    shared = np.concatenate(
        [
            np.maximum(window_a[:, :2], window_b[:, :2]),
            np.minimum(window_a[:, 2:], window_b[:, 2:]),
        ],
        axis=1,
    )  # [P, 4]
    iou = paired_iou_xyxy(
        clip_boxes_xyxy(pieces.boxes[first], shared), clip_boxes_xyxy(pieces.boxes[second], shared)
    )
    joins[first, second] = iou >= threshold
    return joins


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
        floor = GEOMETRY_SCORE_RATIO * float(pieces.scores[group[0]])
        sure = [m for m in group if pieces.scores[m] >= floor]
        tiled = [m for m in sure if pieces.sources[m] != WHOLE_IMAGE]
        used = tiled or sure  # tiles see finer detail than the downscaled whole image
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
