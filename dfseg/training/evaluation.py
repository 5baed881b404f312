"""Validation: predict a split with the shared runtime post-processing, then COCO-exact metrics.

Predictions are the unfiltered top-100 per image (COCO's maxDets), mapped back to original
pixels exactly as `dfseg infer` maps them, so validation numbers and deployed behaviour agree.
Masks are run-length encoded as soon as they are made (dense masks of a whole split would not fit
in memory).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from dfseg.config.choices import Decode
from dfseg.config.tasks import Task, task_spec
from dfseg.data.dataset import InstanceDataset
from dfseg.data.loader import build_eval_loader
from dfseg.metrics import EvalReport, ImageGroundTruth, ImagePredictions, build_eval_report
from dfseg.metrics.semantic import SemanticReport
from dfseg.nn.postprocess import DetectionPostprocess, max_detections
from dfseg.runtime.outputs import RawOutputs
from dfseg.runtime.postprocess import EVAL_SETTINGS, to_detections
from dfseg.structures import ImageAnnotation
from dfseg.structures.progress import ProgressCallback, ProgressEvent, report
from dfseg.training.distributed import DistributedContext, gather_to_main

DEFAULT_THRESHOLD = 0.5
"""The confidence threshold before any validation has found one (the manifest's default)."""


@dataclass
class Evaluation:
    """A split's ground truth, predictions and metrics (on the main rank)."""

    report: EvalReport
    annotations: list[ImageAnnotation]
    ground_truths: list[ImageGroundTruth]
    predictions: list[ImagePredictions]


@dataclass(frozen=True)
class EvalSettings:
    """How to run the model over a split."""

    input_hw: tuple[int, int]
    task: Task
    keep_ratio: bool
    batch_size: int
    workers: int
    autocast_dtype: torch.dtype | None = None
    decode: Decode = "topk"
    nms_iou: float = 0.7


@torch.inference_mode()
def predict_annotations(
    model: nn.Module,
    annotations: Sequence[ImageAnnotation],
    class_names: list[str],
    settings: EvalSettings,
    device: torch.device,
    progress: ProgressCallback | None = None,
) -> list[ImagePredictions]:
    """Unfiltered top-100 predictions per image, in original pixels (masks as RLE)."""
    was_training = model.training
    model.eval()
    dataset = InstanceDataset(
        annotations, settings.input_hw, settings.task, "eval", keep_ratio=settings.keep_ratio
    )
    loader = build_eval_loader(dataset, settings.batch_size, settings.workers, device)
    candidates = max_detections(_num_queries(model), len(class_names), settings.decode)
    postprocess = DetectionPostprocess(min(300, candidates), settings.decode, settings.nms_iou)
    predictions: list[ImagePredictions] = []
    for images, targets in loader:
        images = images.to(device, non_blocking=True)
        with torch.autocast(
            device.type,
            settings.autocast_dtype or torch.float32,
            enabled=settings.autocast_dtype is not None,
        ):
            outputs = model(images)
        height, width = images.shape[-2:]
        sizes = torch.tensor([[width, height]] * len(images), device=device)
        post = postprocess(outputs, sizes)
        raw = _to_numpy(post)
        for index, target in enumerate(targets):
            detections = to_detections(
                raw, index, target["resize_params"], class_names, EVAL_SETTINGS
            )
            predictions.append(ImagePredictions.from_detections(detections))
        report(progress, ProgressEvent("validate", len(predictions), len(annotations)))
    model.train(was_training)
    return predictions


def evaluate_annotations(
    model: nn.Module,
    annotations: Sequence[ImageAnnotation],
    class_names: list[str],
    settings: EvalSettings,
    context: DistributedContext,
    threshold: float | None = None,
    progress: ProgressCallback | None = None,
    fallback_threshold: float = DEFAULT_THRESHOLD,
) -> Evaluation | None:
    """Predict on every rank's share, gather on rank 0 and compute the report there.

    Returns:
        The evaluation on the main rank, None on the others. `threshold` None picks the F1-best
        confidence (masks for segmentation, boxes for detection), or `fallback_threshold` when
        F1 is 0 at every confidence (the report's threshold_source says "fallback").
    """
    annotations = list(annotations)
    shard = list(range(context.rank, len(annotations), context.world_size))
    mine = predict_annotations(
        model,
        [annotations[i] for i in shard],
        class_names,
        settings,
        context.device,
        progress if context.is_main else None,
    )
    gathered = gather_to_main(list(zip(shard, mine, strict=True)), context)
    if gathered is None:
        return None
    by_index = dict(pair for part in gathered for pair in part)
    predictions = [by_index[i] for i in range(len(annotations))]
    ground_truths = [ImageGroundTruth.from_annotation(a) for a in annotations]
    if not task_spec(settings.task).instance_masks:  # box metrics only, outlines or not
        ground_truths = [_without_masks(gt) for gt in ground_truths]
    eval_report = build_eval_report(
        ground_truths, predictions, class_names, threshold, fallback_threshold=fallback_threshold
    )
    return Evaluation(eval_report, annotations, ground_truths, predictions)


def _without_masks(ground_truth: ImageGroundTruth) -> ImageGroundTruth:
    return ImageGroundTruth(
        boxes_xyxy=ground_truth.boxes_xyxy,
        labels=ground_truth.labels,
        iscrowd=ground_truth.iscrowd,
        areas=ground_truth.resolved_areas,
        image_size=ground_truth.image_size,
        where=ground_truth.where,
    )


def _num_queries(model: nn.Module) -> int:
    decoder = getattr(model, "decoder", None)
    return int(getattr(decoder, "num_queries", 300))


def _to_numpy(post: dict[str, torch.Tensor]) -> RawOutputs:
    masks = post.get("mask_logits")
    return RawOutputs(
        labels=post["labels"].cpu().numpy(),
        scores=post["scores"].float().cpu().numpy(),
        boxes=post["boxes"].float().cpu().numpy(),
        mask_logits=None if masks is None else masks.float().cpu().numpy(),
    )


def decision_score(report: EvalReport | SemanticReport, metric: str) -> float:
    """The number that picks best.pt: the mask group for segmentation, else the box group (also
    when the split has no instance labelled with a mask, so mask metrics are undefined); mIoU for
    the semantic task. Undefined numbers count as 0."""
    if isinstance(report, SemanticReport):
        return report.score(metric)
    group = report.primary
    if not np.isfinite(group.map50_95):
        group = report.overall.box
    value = {"map50_95": group.map50_95, "map50": group.map50, "f1": group.f1}[metric]
    return float(value) if np.isfinite(value) else 0.0
