"""Prediction-vs-ground-truth overlap with COCO semantics, on numpy arrays.

For a crowd ground truth the overlap is intersection over the *prediction's* area (how much of the
prediction lies inside the crowd region), exactly as pycocotools computes it; otherwise it is IoU.
Box arithmetic follows pycocotools' C code step by step (xywh, float64) so that matches decided on
an IoU threshold agree with it bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from pycocotools import mask as mask_utils

from dfseg.metrics.errors import MetricsInputError
from dfseg.metrics.inputs import ImageGroundTruth, ImagePredictions
from dfseg.metrics.masks import CocoRle, rle_areas, rle_sizes

IouType = Literal["bbox", "segm"]
IOU_TYPES: tuple[IouType, ...] = ("bbox", "segm")


def boxes_xyxy_to_xywh(boxes_xyxy: np.ndarray) -> np.ndarray:
    """[N, 4] xyxy -> [N, 4] float64 (x, y, width, height), the COCO box form."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def box_iou_coco(
    pred_xywh: np.ndarray, gt_xywh: np.ndarray, gt_crowd: np.ndarray | None = None
) -> np.ndarray:
    """Pairwise overlap of boxes, pycocotools `bbIou` semantics.

    Args:
        pred_xywh: [M, 4] float64 absolute pixel xywh.
        gt_xywh: [N, 4] float64 absolute pixel xywh.
        gt_crowd: [N] bool; for crowd columns the denominator is the prediction's area.

    Returns:
        [M, N] float64 in [0, 1].
    """
    pred = np.asarray(pred_xywh, dtype=np.float64).reshape(-1, 4)
    gt = np.asarray(gt_xywh, dtype=np.float64).reshape(-1, 4)
    crowd = np.zeros(len(gt), bool) if gt_crowd is None else np.asarray(gt_crowd, bool)
    inter_w = np.minimum(pred[:, None, 2] + pred[:, None, 0], gt[None, :, 2] + gt[None, :, 0])
    inter_w = inter_w - np.maximum(pred[:, None, 0], gt[None, :, 0])  # [M, N]
    inter_h = np.minimum(pred[:, None, 3] + pred[:, None, 1], gt[None, :, 3] + gt[None, :, 1])
    inter_h = inter_h - np.maximum(pred[:, None, 1], gt[None, :, 1])  # [M, N]
    overlapping = (inter_w > 0) & (inter_h > 0)  # [M, N]
    inter = np.where(overlapping, inter_w * inter_h, 0.0)  # [M, N]
    pred_area = pred[:, 2] * pred[:, 3]  # [M]
    gt_area = gt[:, 2] * gt[:, 3]  # [N]
    union = np.where(
        crowd[None, :], pred_area[:, None], pred_area[:, None] + gt_area[None, :] - inter
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(overlapping, inter / union, 0.0)  # [M, N]


def mask_iou_coco(
    pred_rles: Sequence[CocoRle], gt_rles: Sequence[CocoRle], gt_crowd: np.ndarray | None = None
) -> np.ndarray:
    """Pairwise overlap of RLE masks via pycocotools (crowd columns as in `box_iou_coco`).

    Returns:
        [M, N] float64.
    """
    if not pred_rles or not gt_rles:
        return np.zeros((len(pred_rles), len(gt_rles)), dtype=np.float64)
    crowd = np.zeros(len(gt_rles), bool) if gt_crowd is None else np.asarray(gt_crowd, bool)
    ious = mask_utils.iou(list(pred_rles), list(gt_rles), crowd.astype(np.uint8).tolist())
    return np.asarray(ious, dtype=np.float64).reshape(len(pred_rles), len(gt_rles))


def image_iou(
    ground_truth: ImageGroundTruth,
    predictions: ImagePredictions,
    iou_type: IouType = "bbox",
    pred_indices: np.ndarray | None = None,
) -> np.ndarray:
    """Class-agnostic overlap of one image's predictions with its ground truth.

    Args:
        ground_truth: the image's instances (crowd flags honoured).
        predictions: the image's predictions.
        iou_type: "bbox" (boxes) or "segm" (masks; both sides need masks of the same size).
        pred_indices: rows to compute (default all), e.g. the score-sorted top-k.

    Returns:
        [len(pred_indices), N] float64.
    """
    rows = np.arange(len(predictions)) if pred_indices is None else np.asarray(pred_indices)
    return _IOU_BY_TYPE[check_iou_type(iou_type)](ground_truth, predictions, rows)


def _box_image_iou(gt: ImageGroundTruth, pred: ImagePredictions, rows: np.ndarray) -> np.ndarray:
    return box_iou_coco(
        boxes_xyxy_to_xywh(pred.boxes_xyxy[rows]), boxes_xyxy_to_xywh(gt.boxes_xyxy), gt.crowd
    )


def _mask_image_iou(gt: ImageGroundTruth, pred: ImagePredictions, rows: np.ndarray) -> np.ndarray:
    gt_rles = gt.rles
    pred_rles = [pred.rles[int(i)] for i in rows]
    if pred_rles and gt_rles:
        sizes = rle_sizes(gt_rles) | rle_sizes(pred_rles)
        if len(sizes) != 1:
            raise MetricsInputError(
                f"{pred.where}: mask sizes {sorted(sizes)} differ between ground truth and "
                "predictions; predicted masks must be at the original image size"
            )
    return mask_iou_coco(pred_rles, gt_rles, gt.crowd)


_IOU_BY_TYPE: dict[IouType, Callable[[ImageGroundTruth, ImagePredictions, np.ndarray], np.ndarray]]
_IOU_BY_TYPE = {"bbox": _box_image_iou, "segm": _mask_image_iou}


def check_iou_type(iou_type: str) -> IouType:
    """Return `iou_type` when it is known, else raise naming the choices."""
    for known in IOU_TYPES:
        if iou_type == known:
            return known
    raise MetricsInputError(f"iou_type must be one of {list(IOU_TYPES)}, got {iou_type!r}")


def prediction_areas(predictions: ImagePredictions, iou_type: IouType) -> np.ndarray:
    """[M] float64 areas of predictions for the COCO area ranges (box w*h, or mask pixels)."""
    if iou_type == "segm":
        return rle_areas(predictions.rles)
    xywh = boxes_xyxy_to_xywh(predictions.boxes_xyxy)
    return xywh[:, 2] * xywh[:, 3]
