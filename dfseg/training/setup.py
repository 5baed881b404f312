"""`build_*` functions: the project config turned into the trainer's parts, settings and hooks
(explicit arguments below this point; no module after this one sees the whole config)."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import torch
from torch import nn

from dfseg.config import ProjectConfig, Settings
from dfseg.config.tasks import task_spec
from dfseg.config.train import TrainConfig
from dfseg.config.variants import ModelVariant, model_variant
from dfseg.data.dataset import InstanceDataset
from dfseg.data.image_cache import CacheMode, ImageCache
from dfseg.data.loader import build_train_loader
from dfseg.data.repeat_factors import repeat_factors, repeated_length
from dfseg.errors import DfsegError
from dfseg.nn import DFine, build_model
from dfseg.nn.checkpoint import CheckpointError, load_checkpoint
from dfseg.nn.pretrained import PretrainedDownloadError, download_pretrained
from dfseg.nn.semantic_model import DFineSemantic
from dfseg.structures import ImageAnnotation
from dfseg.structures.progress import ProgressCallback, ProgressEvent, report
from dfseg.structures.run_layout import RunFolder
from dfseg.training.artifacts import build_manifest
from dfseg.training.criterion import build_criterion
from dfseg.training.criterion.semantic import SemanticCriterion
from dfseg.training.distill import Distiller, DistillWeights, load_teacher, teacher_checkpoint
from dfseg.training.distributed import DistributedContext
from dfseg.training.ema import ModelEMA, fitted_warmup
from dfseg.training.evaluation import EvalSettings
from dfseg.training.hooks import (
    BestCheckpoint,
    DebugImages,
    EarlyStopping,
    ResultsLog,
    RunPlots,
    TrainerHook,
)
from dfseg.training.loop import StepTools
from dfseg.training.optim import OptimizerSettings, build_optimizer
from dfseg.training.parts import LoopSettings, TrainingParts
from dfseg.training.project_data import ProjectData
from dfseg.training.reports import LoadSummary
from dfseg.training.schedule import LrSchedule
from dfseg.training.trackers import build_trackers

logger = logging.getLogger("dfseg.train")


class StartingWeightsError(DfsegError):
    """`model.pretrained` names weights that cannot be used."""


class TrainSettingsError(DfsegError):
    """A train setting that does not fit the dataset."""


FROM_SCRATCH_LR_FACTOR = 2.5
"""From scratch, head and backbone learn at this multiple of the size's official base lr (N:
2e-3). The official rates fine-tune a pretrained backbone (hence its 2-100x lower backbone lr);
on the demo's shapes N at 2e-3 for both reached mask mAP50 0.21 in 12 epochs where the official
8e-4 / 4e-4 reached 0.14 (benchmarks/bench_learning.py, topk decoding)."""


def default_learning_rates(variant: ModelVariant, from_scratch: bool) -> tuple[float, float]:
    """(lr, backbone_lr) when the project leaves them null."""
    if from_scratch:
        rate = FROM_SCRATCH_LR_FACTOR * variant.base_lr
        return rate, rate
    return variant.base_lr, variant.backbone_lr


def optimizer_settings(
    train: TrainConfig, variant: ModelVariant, from_scratch: bool = False
) -> OptimizerSettings:
    """Learning rates and weight decay: the project's values, else the size's defaults (D-FINE's
    for fine-tuning, `default_learning_rates` from scratch)."""
    lr, backbone_lr = default_learning_rates(variant, from_scratch)
    return OptimizerSettings(
        lr=train.lr if train.lr is not None else lr,
        backbone_lr=train.backbone_lr if train.backbone_lr is not None else backbone_lr,
        weight_decay=train.weight_decay if train.weight_decay is not None else variant.weight_decay,
        betas=train.betas,
        layer_lr_decay=train.layer_lr_decay,
        name=optimizer_name(train, from_scratch),
        momentum=train.muon_momentum,
    )


def optimizer_name(train: TrainConfig, from_scratch: bool) -> str:
    """`train.optimizer`, "auto" resolved: Muon from scratch (shapes, 12 epochs: mask mAP50
    0.33 -> 0.44 at the same speed, benchmarks/bench_learning.py), AdamW when fine-tuning, where
    D-FINE's recipe was measured and ours was not."""
    if train.optimizer != "auto":
        return train.optimizer
    return "muon" if from_scratch else "adamw"


def use_mal(train: TrainConfig, from_scratch: bool) -> bool:
    """`train.use_mal`, null resolved: DEIM's MAL from scratch (40 epochs of kangaroo-voc: box
    mAP50 0.315 -> 0.437, F1 0.409 -> 0.533; shapes, 12 epochs: mask mAP50 0.388 -> 0.402;
    benchmarks/bench_learning.py), D-FINE's VFL when fine-tuning, where its recipe is the
    measured one."""
    return from_scratch if train.use_mal is None else train.use_mal


def ema_warmup(train: TrainConfig, steps_per_epoch: int) -> int:
    """`train.ema_warmup`, or one fitted to the run's optimizer updates (`fitted_warmup`)."""
    if train.ema_warmup is not None:
        return train.ema_warmup
    return fitted_warmup(steps_per_epoch * train.epochs)


def autocast_dtype(train: TrainConfig, device: torch.device) -> torch.dtype | None:
    """CUDA: bf16 where supported else fp16 (amp auto), or as asked; CPU: bf16 when cpu_bf16."""
    if device.type == "cuda":
        if train.amp == "off":
            return None
        if train.amp == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if train.amp == "bf16" else torch.float16
    return torch.bfloat16 if train.cpu_bf16 else None


def num_workers(train: TrainConfig, settings: Settings) -> int:
    """DataLoader workers: the project's `train.workers`, else the machine's DFSEG_WORKERS."""
    return train.workers if train.workers is not None else settings.workers


def build_project_model(
    config: ProjectConfig,
    class_names: list[str],
    settings: Settings,
    progress: ProgressCallback | None = None,
) -> tuple[DFine | DFineSemantic, LoadSummary | None]:
    """The model, started from `model.pretrained` when set (the load is reported, never silent;
    class-head rows of classes the checkpoint shares by name are kept)."""
    model = build_model(
        config.model.size,
        len(class_names),
        config.project.task,
        config.data.image_size,
        config.model.num_queries,
        config.model.semantic_context,
    )
    source = _pretrained_source(config, settings.cache_dir, progress)
    if source is None:
        return model, None
    try:
        load = load_checkpoint(model, source, class_names=class_names)
    except CheckpointError as exc:
        raise StartingWeightsError(f"model.pretrained: {exc}") from None
    summary = LoadSummary(
        source=load.source,
        kept=len(load.kept),
        reinitialized=load.reinitialized,
        mapped_classes=load.mapped_classes,
        rebuilt=load.rebuilt,
        ignored=load.ignored,
    )
    return model, summary


def _pretrained_source(
    config: ProjectConfig, cache_dir: Path, progress: ProgressCallback | None
) -> Path | None:
    if config.model.pretrained is None:
        return None
    download = config.model.pretrained_download
    if download is not None:
        try:
            return download_pretrained(
                config.model.size,
                cache_dir,
                variant=download,
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


def attach_image_cache(dataset: InstanceDataset, mode: CacheMode, folder: Path) -> ImageCache:
    """Fill a `data.cache` for the training images and attach it (logged with its size)."""
    started = time.perf_counter()
    cache = ImageCache(mode, folder if mode == "disk" else None)
    cache.fill(dataset.annotations, dataset.cache_reductions())
    dataset.attach_cache(cache)
    logger.info(
        "data.cache %s: %d of %d images, %.2f GB, filled in %.1f s", mode,
        len(cache.reductions), len(dataset.annotations), cache.size_bytes / 1e9,
        time.perf_counter() - started,
    )  # fmt: skip
    return cache


def add_query_groups(model: DFine | DFineSemantic, train: TrainConfig) -> None:
    """Give a detection model `train.query_groups` (their heads start fresh; a model that has
    them already is left as it is, so the batch-size probe can see them first)."""
    if isinstance(model, DFine) and model.decoder.query_groups != train.query_groups:
        model.decoder.set_query_groups(train.query_groups)


def crowded_images_message(images: list[ImageAnnotation], num_queries: int) -> str | None:
    """Why training images hold more objects than the decoder can answer, or None: a model
    finds at most `model.num_queries` objects per image, so the rest are never learned."""
    counts = [int((~image.iscrowd).sum()) for image in images]
    crowded = [count for count in counts if count > num_queries]
    if not crowded:
        return None
    return (
        f"{len(crowded)} training image(s) hold more objects than model.num_queries "
        f"({max(crowded)} > {num_queries}); the model finds at most {num_queries} per image: "
        f"set model.num_queries to at least {min(max(crowded), 300)} (up to 300)"
    )


def build_training_parts(
    config: ProjectConfig,
    model: DFine | DFineSemantic,
    train_images: list[ImageAnnotation],
    context: DistributedContext,
    workers: int,
    class_names: list[str] | None = None,
) -> TrainingParts:
    """Datasets, loader, criterion, optimizer, schedule, scaler and EMA for `model`
    (`train.batch_size: auto` resolved before, see `dfseg.training.auto_batch`), and with
    `train.distill.teacher` the teacher (checked against `class_names`)."""
    train = config.train
    if train.batch_size == "auto":
        raise ValueError("train.batch_size is still 'auto': resolve it with choose_batch_size")
    batch_size = train.batch_size
    if isinstance(model, DFine):
        crowded = crowded_images_message(train_images, model.decoder.num_queries)
        if crowded is not None:
            logger.warning(crowded)
        add_query_groups(model, train)  # before the EMA copy and the optimizer
    dataset = InstanceDataset(
        train_images,
        config.data.image_size,
        config.project.task,
        "train",
        augment=config.augment,
        keep_ratio=config.data.keep_ratio,
        tile=config.data.tile,
    )
    if config.data.cache != "none":
        attach_image_cache(dataset, config.data.cache, config.cache_dir)
    factors = None
    if train.repeat_threshold is not None:
        label_sets = [image.labels[~image.iscrowd] for image in train_images]
        num_classes = model.description.num_classes
        factors = repeat_factors(label_sets, num_classes, train.repeat_threshold)
    loader = build_train_loader(
        dataset,
        batch_size,
        workers,
        train.seed,
        context.rank,
        context.world_size,
        context.device,
        repeat_factors=factors,
    )
    model.to(context.device)
    wrapped: nn.Module = model
    if context.is_distributed:
        device_ids = [context.device.index] if context.device.type == "cuda" else None
        wrapped = nn.parallel.DistributedDataParallel(
            model,
            device_ids=device_ids,
            # a frozen backbone gets no gradients for a while; DDP must not wait for them
            find_unused_parameters=train.freeze_backbone_epochs > 0,
        )
    samples = len(train_images) if factors is None else repeated_length(factors)
    batches = math.ceil(samples / (batch_size * context.world_size))
    steps_per_epoch = max(1, math.ceil(batches / train.accumulate))
    dtype = autocast_dtype(train, context.device)
    rates = optimizer_settings(
        train, model_variant(model.description.size), from_scratch=config.model.pretrained is None
    )
    ema = (
        ModelEMA(model, train.ema_decay, ema_warmup(train, steps_per_epoch)) if train.ema else None
    )
    # after the EMA copy: the distiller hooks the student's encoder, the copy must not carry it
    distiller = project_distiller(config, model, class_names, context)
    tools = StepTools(
        criterion=project_criterion(config, model.description.num_classes),
        optimizer=build_optimizer(model, rates, distiller.trainable() if distiller else None),
        distiller=distiller,
        optimizer_settings=rates,
        schedule=LrSchedule(
            name=train.scheduler,
            total_steps=steps_per_epoch * train.epochs,
            warmup_steps=round(train.warmup_epochs * steps_per_epoch),
            flat_fraction=train.flat_fraction,
            min_lr_ratio=train.min_lr_ratio,
        ),
        scaler=torch.amp.GradScaler("cuda", enabled=dtype == torch.float16),
        ema=ema,
        accumulate=train.accumulate,
        grad_clip=train.grad_clip,
        autocast_dtype=dtype,
        device=context.device,
    )
    eval_settings = EvalSettings(
        input_hw=config.data.image_size,
        task=config.project.task,
        keep_ratio=config.data.keep_ratio,
        batch_size=batch_size,
        workers=workers,
        autocast_dtype=dtype,
        decode=config.model.decode,
        nms_iou=config.model.nms_iou,
    )
    return TrainingParts(wrapped, model, tools, dataset, loader, eval_settings, steps_per_epoch)


def project_distiller(
    config: ProjectConfig,
    model: DFine | DFineSemantic,
    class_names: list[str] | None,
    context: DistributedContext,
) -> Distiller | None:
    """The teacher's loss terms when `train.distill.teacher` is set (on the model's device)."""
    distill = config.train.distill
    if distill.teacher is None:
        return None
    if context.is_distributed:
        raise TrainSettingsError(
            "train.distill does not run under torchrun yet (the feature projections would "
            "drift apart between processes); distil on one device"
        )
    path = teacher_checkpoint(distill.teacher, config.base_dir)
    names = class_names if class_names is not None else []
    teacher, _ = load_teacher(path, config.project.task, names)
    distiller = Distiller(model, teacher, DistillWeights.from_config(distill))
    return distiller.to(context.device)


def project_criterion(config: ProjectConfig, num_classes: int) -> nn.Module:
    """The task's training criterion with the project's loss settings."""
    train = config.train
    if task_spec(config.project.task).semantic:
        weights = train.semantic_class_weights
        if weights is not None and len(weights) != num_classes:
            raise TrainSettingsError(
                f"train.semantic_class_weights has {len(weights)} weights for {num_classes} "
                "classes (a dataset of instance labels gets 'background' as class 0); give "
                "one weight per class, in class order"
            )
        return SemanticCriterion(
            num_classes,
            ce_weight=train.semantic_ce_weight,
            dice_weight=train.semantic_dice_weight,
            class_weights=weights,
            ohem_keep=train.semantic_ohem,
        )
    return build_criterion(
        num_classes,
        config.project.task,
        use_mal=use_mal(train, from_scratch=config.model.pretrained is None),
        mask_bce_weight=train.mask_bce_weight,
        mask_dice_weight=train.mask_dice_weight,
        cls_weight=train.cls_loss_weight,
    )


def loop_settings(config: ProjectConfig, class_names: list[str]) -> LoopSettings:
    """The trainer's settings; last.pt keeps the project and manifest for `--resume`."""
    train = config.train
    return LoopSettings(
        epochs=train.epochs,
        val_every=train.val_every,
        seed=train.seed,
        decision_metric=train.decision_metric,
        time_budget=train.time_budget,
        freeze_backbone_epochs=train.freeze_backbone_epochs,
        ema_warmup_fitted=train.ema_warmup is None,
        resume_payload={
            "config": config.model_dump(mode="json"),
            "manifest": build_manifest(config, class_names).model_dump(mode="json"),
        },
    )


def build_hooks(
    config: ProjectConfig, run: RunFolder, data: ProjectData, eval_split: str
) -> list[TrainerHook]:
    """The hooks every run has (results file and log, best.pt, early stopping, trackers, debug
    images, plots), in the order they run."""
    class_names = data.class_names
    return [
        ResultsLog(config.project.task, config.train.decision_metric),
        BestCheckpoint(build_manifest(config, class_names), eval_split),
        EarlyStopping(config.train.early_stopping),
        *build_trackers(config, run.path),
        DebugImages(config.augment.debug_images, class_names),
        RunPlots(class_names, data.splits["train"]),
    ]
