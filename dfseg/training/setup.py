"""`build_*` functions: the project config turned into the trainer's parts (explicit arguments
below this point; no module sees the whole config)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from dfseg.config import ProjectConfig, get_settings
from dfseg.config.project import PRETRAINED_DOWNLOADS
from dfseg.config.train import DEFAULT_OPTIMIZER_SETTINGS
from dfseg.data.augment_settings import AugmentSettings
from dfseg.data.dataset import InstanceDataset
from dfseg.data.loader import build_train_loader
from dfseg.errors import DfsegError
from dfseg.nn import DFine, build_model
from dfseg.nn.checkpoint import CheckpointError, load_checkpoint
from dfseg.nn.pretrained import PretrainedDownloadError, download_pretrained
from dfseg.structures import ImageAnnotation
from dfseg.structures.progress import ProgressCallback, ProgressEvent, report
from dfseg.training.criterion import build_criterion
from dfseg.training.distributed import DistributedContext
from dfseg.training.ema import ModelEMA
from dfseg.training.evaluation import EvalSettings
from dfseg.training.loop import StepTools
from dfseg.training.optim import OptimizerSettings, build_optimizer
from dfseg.training.reports import LoadSummary
from dfseg.training.schedule import LrSchedule


class StartingWeightsError(DfsegError):
    """`model.pretrained` names weights that cannot be used."""


def optimizer_settings(config: ProjectConfig) -> OptimizerSettings:
    """Learning rates and weight decay: the project's values, else the size's D-FINE defaults."""
    lr, backbone_lr, weight_decay = DEFAULT_OPTIMIZER_SETTINGS[config.model.size]
    train = config.train
    return OptimizerSettings(
        lr=train.lr if train.lr is not None else lr,
        backbone_lr=train.backbone_lr if train.backbone_lr is not None else backbone_lr,
        weight_decay=train.weight_decay if train.weight_decay is not None else weight_decay,
        betas=train.betas,
    )


def augment_settings(config: ProjectConfig) -> AugmentSettings:
    return AugmentSettings(**config.augment.model_dump())


def autocast_dtype(config: ProjectConfig, device: torch.device) -> torch.dtype | None:
    """CUDA: bf16 where supported else fp16 (amp auto), or as asked; CPU: bf16 when cpu_bf16."""
    if device.type == "cuda":
        choice = config.train.amp
        if choice == "off":
            return None
        if choice == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if choice == "bf16" else torch.float16
    return torch.bfloat16 if config.train.cpu_bf16 else None


def num_workers(config: ProjectConfig) -> int:
    return config.train.workers if config.train.workers is not None else get_settings().workers


def build_project_model(
    config: ProjectConfig, num_classes: int, progress: ProgressCallback | None = None
) -> tuple[DFine, LoadSummary | None]:
    """The model, started from `model.pretrained` when set (the load is reported, never silent)."""
    model = build_model(config.model.size, num_classes, config.project.task, config.data.image_size)
    source = _pretrained_source(config, progress)
    if source is None:
        return model, None
    try:
        load = load_checkpoint(model, source)
    except CheckpointError as exc:
        raise StartingWeightsError(f"model.pretrained: {exc}") from None
    summary = LoadSummary(
        source=load.source,
        kept=len(load.kept),
        reinitialized=load.reinitialized,
        rebuilt=load.rebuilt,
        ignored=load.ignored,
    )
    return model, summary


def _pretrained_source(config: ProjectConfig, progress: ProgressCallback | None) -> Path | None:
    name = config.model.pretrained
    if name is None:
        return None
    if name in PRETRAINED_DOWNLOADS:
        try:
            return download_pretrained(
                config.model.size,
                get_settings().cache_dir,
                variant=name,
                progress=lambda done, total: report(
                    progress, ProgressEvent("download", done, total)
                ),
            )
        except PretrainedDownloadError as exc:
            raise StartingWeightsError(str(exc)) from None
    path = config.model.pretrained_path(config.base_dir)
    if path is None or not path.is_file():
        raise StartingWeightsError(
            f"model.pretrained: {path} not found (give a checkpoint file, 'coco' or null)"
        )
    return path


@dataclass
class TrainingParts:
    """Everything the epoch loop uses."""

    model: nn.Module  # DistributedDataParallel-wrapped when distributed
    raw_model: DFine
    tools: StepTools
    train_dataset: InstanceDataset
    train_loader: torch.utils.data.DataLoader
    eval_settings: EvalSettings
    steps_per_epoch: int


def build_training_parts(
    config: ProjectConfig,
    model: DFine,
    train_images: list[ImageAnnotation],
    context: DistributedContext,
) -> TrainingParts:
    """Datasets, loader, criterion, optimizer, schedule, scaler and EMA for `model`."""
    train = config.train
    workers = num_workers(config)
    dataset = InstanceDataset(
        train_images,
        config.data.image_size,
        config.project.task,
        "train",
        augment=augment_settings(config),
        keep_ratio=config.data.keep_ratio,
    )
    loader = build_train_loader(
        dataset,
        train.batch_size,
        workers,
        train.seed,
        context.rank,
        context.world_size,
        context.device,
    )
    model.to(context.device)
    wrapped: nn.Module = model
    if context.is_distributed:
        device_ids = [context.device.index] if context.device.type == "cuda" else None
        wrapped = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    batches = math.ceil(len(train_images) / (train.batch_size * context.world_size))
    steps_per_epoch = max(1, math.ceil(batches / train.accumulate))
    dtype = autocast_dtype(config, context.device)
    tools = StepTools(
        criterion=build_criterion(
            model.spec.num_classes,
            config.project.task,
            use_mal=train.use_mal,
            mask_bce_weight=train.mask_bce_weight,
            mask_dice_weight=train.mask_dice_weight,
        ),
        optimizer=build_optimizer(model, optimizer_settings(config)),
        schedule=LrSchedule(
            name=train.scheduler,
            total_steps=steps_per_epoch * train.epochs,
            warmup_steps=round(train.warmup_epochs * steps_per_epoch),
            flat_fraction=train.flat_fraction,
            min_lr_ratio=train.min_lr_ratio,
        ),
        scaler=torch.amp.GradScaler("cuda", enabled=dtype == torch.float16),
        ema=ModelEMA(model, train.ema_decay, train.ema_warmup) if train.ema else None,
        accumulate=train.accumulate,
        grad_clip=train.grad_clip,
        autocast_dtype=dtype,
        device=context.device,
    )
    eval_settings = EvalSettings(
        input_hw=config.data.image_size,
        task=config.project.task,
        keep_ratio=config.data.keep_ratio,
        batch_size=train.batch_size,
        workers=workers,
        autocast_dtype=dtype,
    )
    return TrainingParts(wrapped, model, tools, dataset, loader, eval_settings, steps_per_epoch)
