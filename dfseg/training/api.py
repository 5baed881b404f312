"""Entry points of the training layer: `train_project`, resuming, and `validate_checkpoint`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from dfseg.config import ProjectConfig, get_settings
from dfseg.config.loader import apply_overrides, validate_project
from dfseg.errors import DfsegError
from dfseg.structures.progress import ProgressCallback, ProgressEvent, report
from dfseg.training import artifacts
from dfseg.training.allocator import tune_glibc_malloc
from dfseg.training.checkpoint_io import load_payload
from dfseg.training.distributed import (
    DistributedContext,
    barrier,
    broadcast_from_main,
    init_distributed,
    shutdown_distributed,
)
from dfseg.training.loggers import build_metric_sinks
from dfseg.training.project_data import ProjectData, load_project_data
from dfseg.training.reports import TrainReport
from dfseg.training.run_dir import create_run_dir, latest_run_dir
from dfseg.training.setup import build_project_model, build_training_parts
from dfseg.training.trainer import EpochCallback, Trainer, seed_everything

logger = logging.getLogger("dfseg.train")
TRAIN_LOG = "train.log"


class ResumeError(DfsegError):
    """A run that cannot be resumed (no last.pt, nothing left to do)."""


class TrainingFailed(DfsegError):
    """Training stopped on an exception; the message names the log and how to resume."""

    exit_code = 1


class TrainingInterrupted(TrainingFailed):
    """Training stopped by Ctrl-C (SIGINT)."""

    exit_code = 130


def resolve_resume(output_root: Path, run: Path | None) -> Path:
    """The last.pt to resume: of `run` (a run folder or a .pt file), else of the newest run."""
    if run is None:
        found = latest_run_dir(output_root)
        if found is None:
            raise ResumeError(f"no run with a last.pt under {output_root} to resume")
        return found / artifacts.LAST_CHECKPOINT
    path = run / artifacts.LAST_CHECKPOINT if run.is_dir() else run
    if not path.is_file():
        raise ResumeError(f"{path}: not found; give a run folder that holds last.pt")
    return path


def config_for_resume(last_checkpoint: Path, overrides: Sequence[str]) -> ProjectConfig:
    """The run's own project (as saved in last.pt) with `overrides` applied, e.g.
    `train.epochs=80` to extend a finished run."""
    payload = load_payload(last_checkpoint)
    if payload.get("format") != artifacts.CHECKPOINT_FORMAT or "config" not in payload:
        raise ResumeError(f"{last_checkpoint}: not a dfseg last.pt (no saved project)")
    data = dict(payload["config"])
    apply_overrides(data, overrides, None)
    config = validate_project(data, None)
    done = int(payload["epoch"])
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
    on_epoch: EpochCallback | None = None,
) -> TrainReport | None:
    """Train (or resume) a run of the project; returns the report on rank 0, None elsewhere."""
    tune_glibc_malloc()
    torch.set_flush_denormal(True)  # denormal floats slow CPU kernels 10-100x
    threads = get_settings().threads
    if threads:
        torch.set_num_threads(threads)
    context = init_distributed(config.train.device or get_settings().device)
    handler: logging.Handler | None = None
    try:
        data = _load_data(config, context, progress)
        payload = load_payload(resume_from) if resume_from is not None else None
        seed_everything(config.train.seed, 2**31)  # the same initial weights for the same seed
        model, load = build_project_model(config, len(data.class_names), progress)
        if load is not None and payload is None:
            report(progress, ProgressEvent("load", 0, None, message=_load_message(load)))
        parts = build_training_parts(config, model, data.splits["train"], context)
        run_dir = _run_dir(config, resume_from, context)
        if context.is_main:
            artifacts.write_resolved_project(config, run_dir)
            handler = _attach_log(run_dir)
            report(progress, ProgressEvent("run", 0, None, message=f"run folder: {run_dir}"))
        sinks = build_metric_sinks(config, run_dir) if context.is_main else []
        try:
            trainer = Trainer(
                config, data, parts, context, run_dir, load, progress, on_epoch, sinks
            )
            if payload is not None:
                trainer.restore(payload)
                report(progress, ProgressEvent("run", 0, None, message=_resume_message(payload)))
            result = trainer.fit()
        except KeyboardInterrupt:
            logger.warning("interrupted (Ctrl-C)")
            raise TrainingInterrupted(_stopped_message(config, run_dir, "interrupted")) from None
        except Exception as exc:
            logger.exception("training stopped by an error")
            cause = f"stopped by an error: {type(exc).__name__}: {exc}".strip()
            raise TrainingFailed(_stopped_message(config, run_dir, cause)) from exc
        return result if context.is_main else None
    finally:
        if handler is not None:
            logger.removeHandler(handler)
            handler.close()
        shutdown_distributed()


def _load_data(
    config: ProjectConfig, context: DistributedContext, progress: ProgressCallback | None
) -> ProjectData:
    if context.is_main:
        data = load_project_data(config, create_split=True)
        if data.created_split is not None:
            counts = ", ".join(f"{k} {v}" for k, v in data.created_split.counts.items())
            report(progress, ProgressEvent("split", 0, None, message=f"made a split: {counts}"))
    barrier(context)
    if not context.is_main:
        data = load_project_data(config, create_split=False)
    return data


def _run_dir(config: ProjectConfig, resume_from: Path | None, context: DistributedContext) -> Path:
    if resume_from is not None:
        return resume_from.parent
    path = create_run_dir(config.output_root) if context.is_main else None
    return Path(broadcast_from_main(str(path), context))


def _resume_message(payload: dict[str, object]) -> str:
    done = int(payload["epoch"])  # type: ignore[call-overload]
    message = f"resuming after epoch {done}"
    if payload.get("pending_epoch") is not None:
        message += f" (its validation did not finish: validating epoch {done} first)"
    logger.info(message)
    return message


def _stopped_message(config: ProjectConfig, run_dir: Path, cause: str) -> str:
    """One paragraph: what stopped training, where the log is and how to go on."""
    text = f"Training {cause}. The log (with the traceback of any error) is {run_dir / TRAIN_LOG}."
    last = run_dir / artifacts.LAST_CHECKPOINT
    if last.is_file():
        done = int(load_payload(last)["epoch"])
        project = config.source if config.source is not None else "PROJECT.yaml"
        text += (
            f" Epoch {done} of {config.train.epochs} is saved in {last}: continue with "
            f"`dfseg train {project} --resume {run_dir}`."
        )
    else:
        text += " No epoch had finished, so there is nothing to resume: start the run again."
    return text


def _attach_log(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / TRAIN_LOG, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler


def _load_message(load: object) -> str:
    from dfseg.training.reports import LoadSummary

    assert isinstance(load, LoadSummary)
    parts = [f"starting weights {load.source}: {load.kept} tensors kept"]
    if load.reinitialized:
        parts.append(
            f"re-initialised {len(load.reinitialized)} ({', '.join(load.reinitialized[:4])}...)"
        )
    if load.rebuilt:
        parts.append(f"rebuilt for this input size: {', '.join(load.rebuilt)}")
    if load.ignored:
        parts.append(f"ignored {len(load.ignored)}: {', '.join(load.ignored[:4])}")
    message = "; ".join(parts)
    logger.info(message)
    return message
