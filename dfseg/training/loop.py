"""One training epoch: forward, D-FINE criterion (+ distillation terms), (scaled) backward,
accumulation, clipping, optimizer and EMA updates, with progress events carrying the loss
components."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from dfseg.structures.progress import ProgressCallback, ProgressEvent, report
from dfseg.training.distill import Distiller
from dfseg.training.ema import ModelEMA
from dfseg.training.optim import OptimizerSettings
from dfseg.training.schedule import LrSchedule

# results.csv groups the criterion's terms (final, aux, pre, enc, dn layers) into these families;
# the columns depend only on the task, never on the number of decoder layers.
LOSS_FAMILIES = ("cls", "l1", "giou", "fgl", "ddf", "mask_bce", "mask_dice")
MASK_LOSS_FAMILIES = ("mask_bce", "mask_dice")  # only tasks with instance masks have them
SEMANTIC_LOSS_FAMILIES = ("sem_ce", "sem_dice")  # the semantic task's only ones
_FAMILY_PREFIXES = {
    "loss_vfl": "cls",
    "loss_mal": "cls",
    "loss_bbox": "l1",
    "loss_giou": "giou",
    "loss_fgl": "fgl",
    "loss_ddf": "ddf",
    "loss_mask_bce": "mask_bce",
    "loss_mask_dice": "mask_dice",
    "loss_sem_ce": "sem_ce",
    "loss_sem_dice": "sem_dice",
    "loss_kd_logit": "kd_logit",
    "loss_kd_box": "kd_box",
    "loss_kd_mask": "kd_mask",
    "loss_kd_feat": "kd_feat",
}


def loss_family(term: str) -> str:
    """`loss_bbox_aux_1` -> `l1`; unknown names keep their own name."""
    for prefix, family in _FAMILY_PREFIXES.items():
        if term == prefix or term.startswith(prefix + "_"):
            return family
    return term


@dataclass
class StepState:
    """Position in the run, saved in last.pt so resuming continues the schedule exactly."""

    optimizer_steps: int = 0
    skipped_batches: int = 0


@dataclass
class EpochLosses:
    """Mean loss per family over the epoch's batches (and the total)."""

    means: dict[str, float] = field(default_factory=dict)
    batches: int = 0
    images: int = 0
    seconds: float = 0.0
    skipped: int = 0


@dataclass
class StepTools:
    """What a training step needs besides the model and the data."""

    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: LrSchedule
    scaler: torch.amp.GradScaler
    ema: ModelEMA | None
    accumulate: int
    grad_clip: float
    autocast_dtype: torch.dtype | None
    device: torch.device
    optimizer_settings: OptimizerSettings  # how `optimizer` was built
    distiller: Distiller | None = None  # train.distill: the teacher's extra loss terms


def train_one_epoch(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, list[dict[str, Any]]]],
    num_batches: int,
    tools: StepTools,
    state: StepState,
    task_name: str,
    progress: ProgressCallback | None = None,
    on_first_batch: Callable[[Tensor, list[dict[str, Any]]], None] | None = None,
) -> EpochLosses:
    """Train over `batches` once; returns mean losses. Non-finite losses skip their batch."""
    model.train()
    sums: dict[str, float] = defaultdict(float)
    result = EpochLosses()
    started = time.perf_counter()
    tools.optimizer.zero_grad(set_to_none=True)
    pending = 0
    for index, (images, targets) in enumerate(batches):
        if index == 0 and on_first_batch is not None:
            on_first_batch(images, targets)
        images = images.to(tools.device, non_blocking=True)
        targets = [_to_device(t, tools.device) for t in targets]
        total, families = _forward_loss(model, images, targets, tools)
        if not math.isfinite(float(total.detach())):
            state.skipped_batches += 1
            result.skipped += 1
            tools.optimizer.zero_grad(set_to_none=True)
            pending = 0
            continue
        tools.scaler.scale(total / tools.accumulate).backward()
        pending += 1
        if pending == tools.accumulate or index + 1 == num_batches:
            _optimizer_step(model, tools, state)
            pending = 0
        result.batches += 1
        result.images += len(images)
        for name, value in families.items():
            sums[name] += value
        elapsed = time.perf_counter() - started
        info: dict[str, float | str] = {
            "loss": sums["loss"] / result.batches,
            "img/s": result.images / max(elapsed, 1e-9),
            "lr": tools.optimizer.param_groups[0]["lr"],
        }
        if tools.distiller is not None:  # what the teacher costs per batch
            info["teacher ms"] = tools.distiller.teacher_ms()
        report(progress, ProgressEvent(task_name, index + 1, num_batches, info=info))
    result.seconds = time.perf_counter() - started
    result.means = {name: value / max(1, result.batches) for name, value in sums.items()}
    return result


def _forward_loss(
    model: nn.Module, images: Tensor, targets: list[dict[str, Any]], tools: StepTools
) -> tuple[Tensor, dict[str, float]]:
    dtype = tools.autocast_dtype
    with torch.autocast(tools.device.type, dtype or torch.float32, enabled=dtype is not None):
        outputs = model(images, targets)
    loss_dict = tools.criterion(outputs, targets)
    if tools.distiller is not None:
        loss_dict.update(tools.distiller(images, outputs, targets, dtype))
    total = torch.stack([value.float() for value in loss_dict.values()]).sum()
    families: dict[str, float] = defaultdict(float)
    for name, value in loss_dict.items():
        families[loss_family(name)] += float(value.detach())
    families["loss"] = float(total.detach())
    return total, families


def _optimizer_step(model: nn.Module, tools: StepTools, state: StepState) -> None:
    tools.schedule.apply(tools.optimizer, state.optimizer_steps)
    if tools.grad_clip > 0:
        tools.scaler.unscale_(tools.optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), tools.grad_clip)
    tools.scaler.step(tools.optimizer)
    tools.scaler.update()
    tools.optimizer.zero_grad(set_to_none=True)
    state.optimizer_steps += 1
    if tools.ema is not None:
        tools.ema.update(model)


def _to_device(target: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        key: value.to(device, non_blocking=True) if isinstance(value, Tensor) else value
        for key, value in target.items()
    }
