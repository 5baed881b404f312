"""Synthetic but realistic evaluation fixtures and a pycocotools reference runner."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from dfseg.metrics.inputs import ImageGroundTruth, ImagePredictions

Dataset = tuple[list[ImageGroundTruth], list[ImagePredictions]]


def _ellipse_mask(box: np.ndarray, height: int, width: int) -> np.ndarray:
    """[H, W] bool ellipse inscribed in an xyxy box (at least one pixel)."""
    x1, y1, x2, y2 = box
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    rx, ry = max((x2 - x1) / 2, 0.5), max((y2 - y1) / 2, 0.5)
    mask = ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1.0
    if not mask.any():
        mask[min(int(cy), height - 1), min(int(cx), width - 1)] = True
    return mask


def _random_boxes(rng: np.random.Generator, count: int, height: int, width: int) -> np.ndarray:
    """[count, 4] xyxy boxes with log-uniform sizes spanning small, medium and large."""
    size_w = np.exp(rng.uniform(np.log(3), np.log(width * 0.9), count))
    size_h = np.clip(size_w * np.exp(rng.normal(0, 0.4, count)), 3, height * 0.95)
    x1 = rng.uniform(0, width - size_w)
    y1 = rng.uniform(0, height - size_h)
    return np.stack([x1, y1, x1 + size_w, y1 + size_h], axis=1)


def _jitter(
    rng: np.random.Generator, boxes: np.ndarray, scale: float, h: int, w: int
) -> np.ndarray:
    sizes = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1)
    moved = boxes + rng.normal(0, scale, boxes.shape) * sizes
    moved = np.clip(moved, 0, [w, h, w, h])
    moved[:, 2:] = np.maximum(moved[:, 2:], moved[:, :2] + 1)
    return moved


def make_image(
    rng: np.random.Generator,
    num_classes: int,
    height: int,
    width: int,
    num_preds: int,
    with_masks: bool,
) -> tuple[ImageGroundTruth, ImagePredictions]:
    """One image: 0-8 objects (some crowd, some duplicated), `num_preds` predictions mixing
    jittered hits, wrong classes, duplicates, tied scores and background noise."""
    num_gt = int(rng.choice([0, 0, 1, 2, 3, 5, 8]))
    gt_boxes = _random_boxes(rng, num_gt, height, width)
    gt_labels = rng.integers(0, num_classes, num_gt)
    if num_gt >= 3:  # an exact duplicate object: ties in IoU
        gt_boxes[-1], gt_labels[-1] = gt_boxes[0], gt_labels[0]
    crowd = rng.random(num_gt) < 0.12
    hits = np.repeat(np.arange(num_gt), rng.integers(0, 4, num_gt))
    hit_boxes = _jitter(rng, gt_boxes[hits], 0.08, height, width)
    hit_labels = np.where(
        rng.random(len(hits)) < 0.85, gt_labels[hits], rng.integers(0, num_classes, len(hits))
    )
    num_noise = max(num_preds - len(hits), 0)
    noise_boxes = _random_boxes(rng, num_noise, height, width)
    boxes = np.concatenate([hit_boxes, noise_boxes])[:num_preds]
    labels = np.concatenate([hit_labels, rng.integers(0, num_classes, num_noise)])[:num_preds]
    scores = np.concatenate([rng.uniform(0.3, 1.0, len(hits)), rng.beta(1, 6, num_noise)])[
        :num_preds
    ]
    tied = rng.random(len(scores)) < 0.2
    scores[tied] = np.round(scores[tied], 1)  # equal scores within and across images
    if len(boxes) > 2:  # an exact duplicate prediction
        boxes[1], labels[1], scores[1] = boxes[0], labels[0], scores[0]
    gt_masks = pred_masks = None
    if with_masks:
        gt_masks = (
            np.stack([_ellipse_mask(b, height, width) for b in gt_boxes])
            if num_gt
            else np.zeros((0, height, width), bool)
        )
        pred_masks = (
            np.stack([_ellipse_mask(b, height, width) for b in boxes])
            if len(boxes)
            else np.zeros((0, height, width), bool)
        )
    gt = ImageGroundTruth(gt_boxes, gt_labels, crowd, masks=gt_masks, image_size=(height, width))
    pred = ImagePredictions(
        boxes.astype(np.float32), scores.astype(np.float32), labels, masks=pred_masks
    )
    return gt, pred


def make_dataset(
    seed: int,
    num_images: int,
    num_classes: int = 5,
    height: int = 96,
    width: int = 128,
    num_preds: int = 40,
    with_masks: bool = False,
) -> Dataset:
    rng = np.random.default_rng(seed)
    pairs = [
        make_image(rng, num_classes, height, width, num_preds, with_masks)
        for _ in range(num_images)
    ]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _xywh(box: np.ndarray) -> list[float]:
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, dtype=np.float64))
    return [x1, y1, x2 - x1, y2 - y1]


def run_pycocotools(
    ground_truths: Sequence[ImageGroundTruth],
    predictions: Sequence[ImagePredictions],
    iou_type: str,
    num_classes: int,
) -> COCOeval:
    """Feed the same data to pycocotools (image i -> id i+1, class k -> category k+1)."""
    images, annotations = [], []
    for index, gt in enumerate(ground_truths):
        height, width = gt.image_size or (1000, 1000)
        images.append({"id": index + 1, "height": height, "width": width})
        rles = gt.rles if gt.has_masks else [None] * len(gt)
        for row in range(len(gt)):
            annotation: dict[str, Any] = {
                "id": len(annotations) + 1,
                "image_id": index + 1,
                "category_id": int(gt.labels[row]) + 1,
                "bbox": _xywh(gt.boxes_xyxy[row]),
                "area": float(gt.resolved_areas[row]),
                "iscrowd": int(gt.crowd[row]),
            }
            if rles[row] is not None:
                annotation["segmentation"] = rles[row]
            annotations.append(annotation)
    coco_gt = COCO()
    coco_gt.dataset = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": k + 1, "name": str(k)} for k in range(num_classes)],
    }
    results = []
    for index, pred in enumerate(predictions):
        for row in range(len(pred)):
            result: dict[str, Any] = {
                "image_id": index + 1,
                "category_id": int(pred.labels[row]) + 1,
                "score": float(pred.scores[row]),
            }
            if iou_type == "bbox":
                result["bbox"] = _xywh(pred.boxes_xyxy[row])
            else:
                result["segmentation"] = pred.rles[row]
            results.append(result)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


@pytest.fixture(scope="session")
def dataset_factory() -> Callable[..., Dataset]:
    return make_dataset


@pytest.fixture(scope="session")
def pycocotools_runner() -> Callable[..., COCOeval]:
    return run_pycocotools


__all__ = ["mask_utils"]
