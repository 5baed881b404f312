"""The one post-processing every backend shares: thresholds, boxes and masks back to original
pixels, masks clipped to their boxes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import cv2
import numpy as np

from dfseg.ops.nms import nms_keep
from dfseg.ops.resize import (
    ResizeParams,
    boxes_to_original,
    mask_to_original_affine,
    masks_to_original,
)
from dfseg.runtime.outputs import RawOutputs
from dfseg.structures import Detections


@dataclass(frozen=True)
class PostprocessSettings:
    """How raw top-K outputs become detections.

    Attributes:
        conf: default score threshold.
        class_conf: per-class thresholds by class id, overriding `conf`.
        max_det: detections kept per image (after thresholds and `classes`, best first).
        clip_masks_to_boxes: zero mask pixels outside the detection's box.
        classes: keep only these class ids (None: all).
        nms_iou: an extra class-aware NMS at this IoU over the kept detections (None: only the
            artifact's own decoding, see the manifest's `decode`).
    """

    conf: float = 0.5
    class_conf: Mapping[int, float] = field(default_factory=dict)
    max_det: int = 300
    clip_masks_to_boxes: bool = True
    classes: frozenset[int] | None = None
    nms_iou: float | None = None

    def thresholds(self, num_classes: int) -> np.ndarray:
        """[C] threshold per class id."""
        values = np.full(num_classes, self.conf, dtype=np.float32)
        for class_id, threshold in self.class_conf.items():
            values[class_id] = threshold
        return values


EVAL_MAX_DETECTIONS = 100  # COCO evaluates at most 100 detections per image (maxDets)
EVAL_SETTINGS = PostprocessSettings(conf=0.0, max_det=EVAL_MAX_DETECTIONS)
"""What every evaluation predicts with (validation, bench, errors, quantize): no confidence
threshold, the top 100 per image, as mAP needs."""


def to_detections(
    raw: RawOutputs,
    index: int,
    params: ResizeParams,
    class_names: list[str],
    settings: PostprocessSettings,
) -> Detections:
    """Detections of image `index` of a batch, in its original pixels.

    Args:
        raw: a batch of backend outputs.
        index: which image of the batch.
        params: that image's pre-processing geometry.
        class_names: id -> name.
        settings: thresholds and limits.

    Returns:
        Detections sorted by score; masks [N, H0, W0] bool for segmentation models. Semantic
        models: no detections, `class_map` [H0, W0] uint8 (see `semantic_class_map`).
    """
    if raw.semantic is not None:
        detections = Detections.empty(class_names, params.orig_hw, with_masks=False)
        detections.class_map = semantic_class_map(raw.semantic[index], params)
        return detections
    scores = raw.scores[index].astype(np.float32, copy=False)  # [K]
    labels = raw.labels[index].astype(np.int64, copy=False)  # [K]
    thresholds = settings.thresholds(len(class_names))
    wanted = scores >= thresholds[np.clip(labels, 0, len(class_names) - 1)]
    wanted &= scores > 0  # score 0: dropped by the graph's NMS (decode "nms")
    if settings.classes is not None:
        wanted &= np.isin(labels, list(settings.classes))
    keep = np.flatnonzero(wanted)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    if settings.nms_iou is not None and len(keep) > 1:
        kept = nms_keep(raw.boxes[index][keep], scores[keep], labels[keep], settings.nms_iou)
        keep = keep[kept]
    keep = keep[: settings.max_det]
    boxes = boxes_to_original(raw.boxes[index][keep].astype(np.float32), params)  # [N, 4]
    masks = None
    if raw.mask_logits is not None:
        masks = _masks_to_original(raw.mask_logits[index][keep], boxes, params, settings)
    return Detections(
        boxes_xyxy=boxes,
        scores=scores[keep],
        labels=labels[keep],
        class_names=class_names,
        image_size=params.orig_hw,
        masks=masks,
    )


def semantic_class_map(semantic: np.ndarray, params: ResizeParams) -> np.ndarray:
    """The class of every original pixel, from one image's semantic output.

    Logits [C, H, W] are cut to the resized image (letterbox padding removed), resized
    bilinearly to the original size and arg-maxed there: the class maps validation scores
    (`dfseg.training.semantic_evaluation.class_map_in_original`). Class ids [H, W] (an argmax
    export) are cut alike and resized with nearest neighbours (pixel centres).

    Returns:
        [H0, W0] uint8 class ids.
    """
    (left, top), (height, width) = params.pad_xy, params.resized_hw
    size_wh = (params.orig_hw[1], params.orig_hw[0])
    if semantic.ndim == 2:
        inside = np.ascontiguousarray(semantic[top : top + height, left : left + width])
        return cv2.resize(inside, size_wh, interpolation=cv2.INTER_NEAREST_EXACT)
    inside = semantic[:, top : top + height, left : left + width]  # [C, h', w']
    channels_last = np.ascontiguousarray(inside.transpose(1, 2, 0), dtype=np.float32)
    resized = cv2.resize(channels_last, size_wh, interpolation=cv2.INTER_LINEAR)
    if resized.ndim == 2:  # one class: cv2 drops the channel axis
        return np.zeros(params.orig_hw, dtype=np.uint8)
    return resized.argmax(axis=2).astype(np.uint8)


def _masks_to_original(
    logits: np.ndarray, boxes_xyxy: np.ndarray, params: ResizeParams, settings: PostprocessSettings
) -> np.ndarray:
    """[N, h, w] logits over the input -> [N, H0, W0] bool over the original image."""
    height, width = params.orig_hw
    if len(logits) == 0:
        return np.zeros((0, height, width), dtype=bool)
    if not settings.clip_masks_to_boxes:
        # Interpolating logits and cutting at 0 equals cutting sigmoid(.) at 0.5.
        return masks_to_original(logits.astype(np.float32, copy=False), params) > 0
    return _masks_in_boxes(logits, boxes_xyxy, params)


def _masks_in_boxes(logits: np.ndarray, boxes_xyxy: np.ndarray, params: ResizeParams) -> np.ndarray:
    """Masks clipped to their boxes, warped only inside each box: the same pixels as warping the
    whole image and clipping afterwards, at the cost of the box area (a 720p frame with 20
    detections: ~80 ms -> a few ms)."""
    height, width = params.orig_hw
    affine = mask_to_original_affine(logits.shape[1:], params)  # original px -> mask px
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    masks = np.zeros((len(logits), height, width), dtype=bool)
    for mask, logit, box in zip(masks, logits, boxes_xyxy, strict=True):
        x1, y1 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
        x2, y2 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
        if x2 <= x1 or y2 <= y1:
            continue
        shifted = affine.copy()
        shifted[:, 2] += affine[:, :2] @ np.array([x1, y1], dtype=np.float64)  # ROI origin
        warped = cv2.warpAffine(
            np.ascontiguousarray(logit, dtype=np.float32), shifted, (x2 - x1, y2 - y1),
            flags=flags, borderMode=cv2.BORDER_REPLICATE,
        )  # fmt: skip
        mask[y1:y2, x1:x2] = warped > 0
    return masks
