"""Model facts without training or files: parameter counts, FLOPs, output shapes."""

from __future__ import annotations

import torch
import torch.nn as nn
from pydantic import BaseModel
from torch.utils.flop_counter import FlopCounterMode

from dfseg.config.tasks import Task
from dfseg.nn.build import build_model

PARTS = ("backbone", "encoder", "decoder", "mask_head", "semantic_head")


class ModelInfo(BaseModel):
    """Size facts of one model configuration.

    `gflops` counts as torch's FlopCounterMode does (2 FLOPs per multiply-accumulate) for one
    image in eval mode; ops it does not model (grid_sample, elementwise) are not included.
    """

    size: str
    task: str
    num_classes: int
    image_size: tuple[int, int]
    parameters: int
    trainable_parameters: int
    parameters_by_part: dict[str, int]
    gflops: float
    gflops_by_part: dict[str, float]
    output_shapes: dict[str, list[int]]


def _count(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def model_info(
    size: str,
    task: Task = "detect",
    num_classes: int = 80,
    image_size: tuple[int, int] = (640, 640),
) -> ModelInfo:
    """Build the model and measure it (one eval forward of a batch-1 input at `image_size`).

    Args:
        size: "n", "s", "m", "l" or "x".
        task: "detect", "segment" or "semantic".
        num_classes: class count.
        image_size: (height, width).

    Returns:
        A `ModelInfo`. Parts absent from the model (mask_head for detect, decoder for
        semantic) count 0.
    """
    model = build_model(size, num_classes, task, image_size).eval()
    parts = {name: getattr(model, name, None) for name in PARTS}
    images = torch.zeros(1, 3, *image_size)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        outputs = model(images)
    counts = counter.get_flop_counts()
    by_part = {
        name: sum(counts.get(f"{type(model).__name__}.{name}", {}).values()) / 1e9 for name in PARTS
    }
    return ModelInfo(
        size=size,
        task=task,
        num_classes=num_classes,
        image_size=(int(image_size[0]), int(image_size[1])),
        parameters=_count(model),
        trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
        parameters_by_part={name: _count(module) for name, module in parts.items()},
        gflops=counter.get_total_flops() / 1e9,
        gflops_by_part=by_part,
        output_shapes={key: list(value.shape) for key, value in outputs.items()},
    )
