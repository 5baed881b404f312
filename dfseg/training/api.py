"""Entry points of the training layer: `train_project` and resuming."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from dfseg.config import ProjectConfig, Settings, get_settings
from dfseg.config.loader import apply_overrides, validate_project
from dfseg.config.variants import model_variant
from dfseg.data.dataset import tiles_per_image
from dfseg.errors import DfsegError
from dfseg.nn.dfine_decoder import saved_query_groups
from dfseg.runtime.threads import ThreadChoice, choose_threads, cpu_model
from dfseg.structures.progress import ProgressCallback, ProgressEvent, report
from dfseg.structures.run_layout import CHECKPOINT_FORMAT, RunFolder, resolve_target
from dfseg.training import artifacts
from dfseg.training.allocator import tune_glibc_malloc
from dfseg.training.auto_batch import choose_batch_size
from dfseg.training.checkpoint_io import load_payload
from dfseg.training.distributed import (
    DistributedContext,
    barrier,
    broadcast_from_main,
    init_distributed,
    shutdown_distributed,
)
from dfseg.training.hooks import ThroughputWatch, TrainerHook
from dfseg.training.project_data import ProjectData, load_project_data
from dfseg.training.reports import LoadSummary, TrainReport
from dfseg.training.setup import (
    add_query_groups,
    build_hooks,
    build_project_model,
    build_training_parts,
    loop_settings,
    num_workers,
    optimizer_settings,
)
from dfseg.training.trainer import Trainer, seed_everything

logger = logging.getLogger("dfseg.train")


class ResumeError(DfsegError):
    """A run that cannot be resumed (no last.pt, nothing left to do)."""


class TrainingFailed(DfsegError):
    """Training stopped on an exception; the message names the log and how to resume."""

    exit_code = 1


class TrainingInterrupted(TrainingFailed):
    """Training stopped by Ctrl-C (SIGINT)."""

    exit_code = 130


def resolve_resume(target: Path | str) -> Path:
    """The last.pt to resume: a .pt file as given, a run folder's, or the newest run's of a
    project file or a folder of runs."""
    return resolve_target(target, holding="last").checkpoint("last")


def config_for_resume(last_checkpoint: Path, overrides: Sequence[str]) -> ProjectConfig:
    """The run's own project (as saved in last.pt) with `overrides` applied, e.g.
    `train.epochs=80` to extend a finished run."""
    payload = load_payload(last_checkpoint)
    if payload.get("format") != CHECKPOINT_FORMAT or "config" not in payload:
        raise ResumeError(f"{last_checkpoint}: not a dfseg last.pt (no saved project)")
    data = dict(payload["config"])
    overridden = apply_overrides(data, overrides, None)
    config = validate_project(data, None, overridden=overridden)
    done = int(payload["epoch"])
    budget = payload.get("budget")
    if (
        config.train.time_budget is not None
        and budget is not None
        and float(budget.get("spent", 0.0)) >= 60 * config.train.time_budget
        and payload.get("pending_epoch") is None
    ):
        raise ResumeError(
            f"{last_checkpoint}: the run used its time budget ({config.train.time_budget:g} min, "
            f"{done} epochs); pass train.time_budget=M with more minutes (or null) to train longer"
        )
    if done >= config.train.epochs and payload.get("pending_epoch") is None:
        raise ResumeError(
            f"{last_checkpoint}: the run already finished {done} of {config.train.epochs} epochs; "
            f"pass train.epochs=N with N > {done} to train longer"
        )
    return config


def train_project(
    config: ProjectConfig,
    resume_from: Path | None = None,
    progress: ProgressCallback | None = None,
    hooks: Sequence[TrainerHook] = (),
    settings: Settings | None = None,
) -> TrainReport | None:
    """Train (or resume) a run of the project; returns the report on rank 0, None elsewhere.

    Args:
        config: the project.
        resume_from: a last.pt to continue (see `resolve_resume`, `config_for_resume`).
        progress: optional callback for progress events.
        hooks: extra `TrainerHook`s, run after the run's own (results, best.pt, ...).
        settings: machine settings (device, workers, threads, cache); None: the environment's.

    Raises:
        TrainingFailed: training stopped by an error; the message names the log and how to
            resume. TrainingInterrupted for Ctrl-C.
    """
    settings = settings or get_settings()
    tune_glibc_malloc()
    torch.set_flush_denormal(True)  # denormal floats slow CPU kernels 10-100x
    threads = choose_threads(settings.threads)
    torch.set_num_threads(threads.threads)
    context = init_distributed(config.train.device or settings.device)
    handler: logging.Handler | None = None
    try:
        data = _load_data(config, context, progress)
        payload = load_payload(resume_from) if resume_from is not None else None
        if payload is not None:
            config = _with_saved_query_groups(config, payload)
        seed_everything(config.train.seed, 2**31)  # the same initial weights for the same seed
        model, load = build_project_model(config, data.class_names, settings, progress)
        if load is not None and payload is None:
            report(progress, ProgressEvent("load", 0, None, message=_load_message(load)))
        add_query_groups(model, config.train)  # the batch-size probe trains them too
        if config.train.batch_size == "auto":
            config = _with_auto_batch(config, model, data, context, progress)
        workers = num_workers(config.train, settings)
        parts = build_training_parts(
            config, model, data.splits["train"], context, workers, data.class_names
        )
        run = _run_folder(config, resume_from, context)
        if context.is_main:
            artifacts.write_resolved_project(config, run)
            handler = _attach_log(run)
            banner = _banner(config, data, context, threads, load, workers)
            logger.info(banner)
            report(progress, ProgressEvent("run", 0, None, message=banner))
            report(progress, ProgressEvent("run", 0, None, message=f"run folder: {run.path}"))
        eval_split = data.eval_split("val")[0]
        watch = ThroughputWatch(adapt=settings.threads is None)  # threads chosen, not given
        own = [*build_hooks(config, run, data, eval_split), watch]
        run_hooks = [*own, *hooks] if context.is_main else []
        try:
            trainer = Trainer(
                parts, data, context, run, loop_settings(config, data.class_names), run_hooks,
                load, progress,
            )  # fmt: skip
            if payload is not None:
                trainer.restore(payload)
                report(progress, ProgressEvent("run", 0, None, message=_resume_message(payload)))
            result = trainer.fit()
        except KeyboardInterrupt:
            logger.warning("interrupted (Ctrl-C)")
            raise TrainingInterrupted(_stopped_message(config, run, "interrupted")) from None
        except Exception as exc:
            logger.exception("training stopped by an error")
            cause = f"stopped by an error: {type(exc).__name__}: {exc}".strip()
            raise TrainingFailed(_stopped_message(config, run, cause)) from exc
        return result if context.is_main else None
    finally:
        if handler is not None:
            logging.getLogger("dfseg").removeHandler(handler)
            handler.close()
        shutdown_distributed()


def _with_auto_batch(
    config: ProjectConfig,
    model: torch.nn.Module,
    data: ProjectData,
    context: DistributedContext,
    progress: ProgressCallback | None,
) -> ProjectConfig:
    """The config with `train.batch_size: auto` resolved by probing the model (rank 0's choice
    for every rank); the run's project.yaml records the number."""
    choice = None
    if context.is_main:
        images = len(data.splits["train"])
        choice = choose_batch_size(model, config.data.image_size, context.device, images)
        logger.info("batch size %s", choice.reason)
        report(progress, ProgressEvent("run", 0, None, message=f"batch {choice.batch_size}: "
                                       f"{choice.reason}"))  # fmt: skip
    choice = broadcast_from_main(choice, context)
    assert choice is not None
    train = config.train.model_copy(update={"batch_size": choice.batch_size})
    return config.model_copy(update={"train": train})


def _load_data(
    config: ProjectConfig, context: DistributedContext, progress: ProgressCallback | None
) -> ProjectData:
    if context.is_main:
        data = load_project_data(config, create_split=True)
        made = data.created_split
        if made is not None:
            counts = ", ".join(f"{k} {v}" for k, v in made.counts.items())
            how = "the dataset's own splits" if made.source == "predefined" else "a split"
            lines = [f"made {how}: {counts}", *made.notes]
            if made.skipped:
                lines.append(f"{len(made.skipped)} unreadable image(s) in no split, e.g. "
                             f"{made.skipped[0]}")  # fmt: skip
            for line in lines:
                logger.info(line)
                report(progress, ProgressEvent("split", 0, None, message=line))
    barrier(context)
    if not context.is_main:
        data = load_project_data(config, create_split=False)
    return data


def _banner(
    config: ProjectConfig,
    data: ProjectData,
    context: DistributedContext,
    threads: ThreadChoice,
    load: LoadSummary | None,
    workers: int,
) -> str:
    """What the run is about to do, on what: the first lines of the console and of train.log."""
    device = context.device
    where = cpu_model() if device.type == "cpu" else torch.cuda.get_device_name(device)
    processes = f" x {context.world_size} processes" if context.world_size > 1 else ""
    splits = ", ".join(f"{name} {len(images)}" for name, images in data.splits.items() if images)
    if config.data.tile is not None:
        train_images = data.splits.get("train") or []
        tiles = sum(tiles_per_image(a.height, a.width, config.data.tile) for a in train_images)
        splits += (
            f" (train as {tiles} tiles of {config.data.tile} px per epoch; val on whole images, "
            "compare with dfseg val --tile)"
        )
    weights = load.source if load is not None else config.model.pretrained or "none (from scratch)"
    rates = optimizer_settings(
        config.train, model_variant(config.model.size), config.model.pretrained is None
    )
    return (
        f"train: {config.project.task}, D-FINE-{config.model.size.upper()} at "
        f"{config.data.image_size[0]}x{config.data.image_size[1]}, {len(data.class_names)} "
        f"classes; images: {splits}\n"
        f"  device {device}{processes} ({where}), {threads.describe()}, {workers} loader workers; "
        f"starting weights: {weights}\n"
        f"  {rates.name} lr {rates.lr:g} (backbone {rates.backbone_lr:g}), "
        f"batch {config.train.batch_size}, "
        f"{config.train.epochs} epochs"
        + (f" at most, {config.train.time_budget:g} min budget" if config.train.time_budget else "")
        + f"; decode {config.model.decode}"
    )


def _run_folder(
    config: ProjectConfig, resume_from: Path | None, context: DistributedContext
) -> RunFolder:
    if resume_from is not None:
        return RunFolder(resume_from.parent)
    path = RunFolder.create(config.output_root).path if context.is_main else None
    return RunFolder(Path(broadcast_from_main(str(path), context)))


def _with_saved_query_groups(config: ProjectConfig, payload: dict[str, Any]) -> ProjectConfig:
    """A resumed run goes on with the query groups its last.pt was trained with (a run from
    before `train.query_groups` had none, while the default is now 3)."""
    saved = saved_query_groups(payload["model"])
    if saved == config.train.query_groups or config.project.task == "semantic":
        return config
    logger.info(
        "resuming with train.query_groups %d, as last.pt was trained (not %d)",
        saved, config.train.query_groups,
    )  # fmt: skip
    train = config.train.model_copy(update={"query_groups": saved})
    return config.model_copy(update={"train": train})


def _resume_message(payload: dict[str, object]) -> str:
    done = int(payload["epoch"])  # type: ignore[call-overload]
    message = f"resuming after epoch {done}"
    if payload.get("pending_epoch") is not None:
        message += f" (its validation did not finish: validating epoch {done} first)"
    logger.info(message)
    return message


def _stopped_message(config: ProjectConfig, run: RunFolder, cause: str) -> str:
    """One paragraph: what stopped training, where the log is and how to go on."""
    text = f"Training {cause}. The log (with the traceback of any error) is {run.train_log}."
    if run.last.is_file():
        done = int(load_payload(run.last)["epoch"])
        project = config.source if config.source is not None else "PROJECT.yaml"
        text += (
            f" Epoch {done} of {config.train.epochs} is saved in {run.last}: continue with "
            f"`dfseg train {project} --resume {run.path}`."
        )
    else:
        text += " No epoch had finished, so there is nothing to resume: start the run again."
    return text


def _attach_log(run: RunFolder) -> logging.Handler:
    """train.log gets every dfseg logger's INFO lines: training, data (images that broke),
    image decoder warnings (`dfseg.decode`)."""
    handler = logging.FileHandler(run.train_log, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package = logging.getLogger("dfseg")
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    return handler


def _load_message(load: LoadSummary) -> str:
    parts = [f"starting weights {load.source}: {load.kept} tensors kept"]
    if load.reinitialized:
        parts.append(
            f"re-initialised {len(load.reinitialized)} ({', '.join(load.reinitialized[:4])}...)"
        )
    if load.mapped_classes:
        mapped = ", ".join(f"{name} (row {row})" for name, row in load.mapped_classes.items())
        parts.append(f"class-head rows kept by name for {mapped}")
    if load.rebuilt:
        parts.append(f"rebuilt for this input size: {', '.join(load.rebuilt)}")
    if load.ignored:
        parts.append(f"ignored {len(load.ignored)}: {', '.join(load.ignored[:4])}")
    message = "; ".join(parts)
    logger.info(message)
    return message
