"""Validation of the semantic task: per-pixel classes in original pixels, then mIoU.

The model's logits at the input size are cut to the resized image (letterbox padding removed),
resized bilinearly to the original image and arg-maxed there, so the metrics compare against
the labels at their own resolution (as mmsegmentation does), never against resized labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dfseg.data.dataset import InstanceDataset
from dfseg.data.loader import build_eval_loader
from dfseg.data.semantic import annotation_to_index_map
from dfseg.metrics.semantic import SemanticAccumulator, SemanticReport
from dfseg.ops.resize import ResizeParams
from dfseg.structures import ImageAnnotation
from dfseg.structures.progress import ProgressCallback, ProgressEvent, report
from dfseg.training.distributed import DistributedContext, gather_to_main
from dfseg.training.evaluation import EvalSettings


@dataclass
class SemanticEvaluation:
    """A split's semantic metrics (on the main rank) and the images they cover."""

    report: SemanticReport
    annotations: list[ImageAnnotation]


def class_map_in_original(logits: Tensor, params: ResizeParams) -> Tensor:
    """The class of every original pixel.

    Args:
        logits: [C, H, W] at the network input (padding included).
        params: how the original became the input.

    Returns:
        [h, w] int64 class indices at the original size.
    """
    (left, top), (height, width) = params.pad_xy, params.resized_hw
    inside = logits[:, top : top + height, left : left + width].float()  # [C, h', w']
    resized = F.interpolate(inside[None], size=params.orig_hw, mode="bilinear", align_corners=False)
    return resized[0].argmax(dim=0)  # [h, w]


@torch.inference_mode()
def accumulate_semantic(
    model: nn.Module,
    annotations: Sequence[ImageAnnotation],
    num_classes: int,
    settings: EvalSettings,
    device: torch.device,
    progress: ProgressCallback | None = None,
) -> SemanticAccumulator:
    """The confusion of `model`'s class maps against the labels of `annotations`."""
    was_training = model.training
    model.eval()
    dataset = InstanceDataset(
        annotations, settings.input_hw, settings.task, "eval", keep_ratio=settings.keep_ratio
    )
    loader = build_eval_loader(dataset, settings.batch_size, settings.workers, device)
    accumulator = SemanticAccumulator(num_classes)
    done = 0
    for images, targets in loader:
        images = images.to(device, non_blocking=True)
        with torch.autocast(
            device.type,
            settings.autocast_dtype or torch.float32,
            enabled=settings.autocast_dtype is not None,
        ):
            logits = model(images)["semantic_logits"]  # [B, C, H, W]
        for index, target in enumerate(targets):
            predicted = class_map_in_original(logits[index], target["resize_params"])
            truth = annotation_to_index_map(annotations[target["image_id"]])
            accumulator.update(predicted.cpu().numpy(), truth)
        done += len(targets)
        report(progress, ProgressEvent("validate", done, len(annotations)))
    model.train(was_training)
    return accumulator


def evaluate_semantic(
    model: nn.Module,
    annotations: Sequence[ImageAnnotation],
    class_names: list[str],
    settings: EvalSettings,
    context: DistributedContext,
    progress: ProgressCallback | None = None,
) -> SemanticEvaluation | None:
    """Every rank's share accumulated, merged on rank 0 into the report (None elsewhere)."""
    annotations = list(annotations)
    shard = [annotations[i] for i in range(context.rank, len(annotations), context.world_size)]
    mine = accumulate_semantic(
        model,
        shard,
        len(class_names),
        settings,
        context.device,
        progress if context.is_main else None,
    )
    gathered = gather_to_main(mine, context)
    if gathered is None:
        return None
    total = gathered[0]
    for part in gathered[1:]:
        total.merge(part)
    return SemanticEvaluation(total.report(class_names), annotations)
