"""`Trainer`: the epoch loop with validation, checkpoints, early stopping and exact resume.

Exact resume: everything random in an epoch is seeded from (train.seed, epoch) at its start, and
`last.pt` (written atomically after every epoch) holds model, EMA, optimizer, scaler, the optimizer
step count (the schedule is a pure function of it), the epoch and the best score. A run killed at
any moment loses at most the epoch in progress: an epoch that is validated is saved before its
validation too (marked `pending_epoch`), so a crash in validation resumes with that validation.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dfseg.config import ProjectConfig
from dfseg.data.debug_images import save_debug_images
from dfseg.structures.progress import ProgressCallback, ProgressEvent, report
from dfseg.training import artifacts
from dfseg.training.checkpoint_io import load_payload, save_atomic
from dfseg.training.distributed import (
    DistributedContext,
    barrier,
    broadcast_from_main,
)
from dfseg.training.evaluation import Evaluation, decision_score, evaluate_annotations
from dfseg.training.loggers import MetricSink
from dfseg.training.loop import EpochLosses, StepState, train_one_epoch
from dfseg.training.project_data import ProjectData
from dfseg.training.reports import EpochResult, LoadSummary, TrainReport
from dfseg.training.run_plots import write_run_plots
from dfseg.training.setup import TrainingParts

logger = logging.getLogger("dfseg.train")
EpochCallback = Callable[[EpochResult], None]


@dataclass
class RunState:
    """Progress of the run (saved in last.pt)."""

    next_epoch: int = 0
    best_score: float | None = None
    best_epoch: int | None = None
    stale_epochs: int = 0
    steps: StepState = field(default_factory=StepState)


class Trainer:
    """Runs the epochs of one training run (on every rank; only rank 0 writes)."""

    def __init__(
        self,
        config: ProjectConfig,
        data: ProjectData,
        parts: TrainingParts,
        context: DistributedContext,
        run_dir: Path,
        load: LoadSummary | None = None,
        progress: ProgressCallback | None = None,
        on_epoch: EpochCallback | None = None,
        sinks: list[MetricSink] | None = None,
    ) -> None:
        self.config = config
        self.sinks = sinks or []
        self.data = data
        self.parts = parts
        self.context = context
        self.run_dir = run_dir
        self.load = load
        self.progress = progress if context.is_main else None
        self.on_epoch = on_epoch if context.is_main else None
        self.state = RunState()
        self.eval_name, self.eval_images = data.eval_split("val")
        self.best_evaluation: Evaluation | None = None
        self.resumed_from: int | None = None
        self.pending: EpochResult | None = None  # trained, saved, not yet validated (resume)

    # ----- resume -----

    def restore(self, payload: dict[str, Any]) -> None:
        """Continue from a last.pt payload (same epoch, schedule position, EMA, optimizer)."""
        tools = self.parts.tools
        self.parts.raw_model.load_state_dict(payload["model"])
        tools.optimizer.load_state_dict(payload["optimizer"])
        tools.scaler.load_state_dict(payload["scaler"])
        if tools.ema is not None and payload.get("ema") is not None:
            tools.ema.load_state_dict(payload["ema"])
        self.state = RunState(
            next_epoch=int(payload["epoch"]),
            best_score=payload.get("best_score"),
            best_epoch=payload.get("best_epoch"),
            stale_epochs=int(payload.get("stale_epochs", 0)),
            steps=StepState(optimizer_steps=int(payload["optimizer_steps"])),
        )
        self.resumed_from = self.state.next_epoch
        if payload.get("pending_epoch") is not None:
            self.pending = EpochResult.model_validate(payload["pending_epoch"])

    # ----- the run -----

    def fit(self) -> TrainReport:
        started = time.perf_counter()
        epochs = self.config.train.epochs
        stopped_early = False
        pending, self.pending = self.pending, None
        if pending is not None:  # resumed after a crash in this epoch's validation
            stopped_early = self._end_epoch(pending, saved=True)
        for epoch in range(self.state.next_epoch, epochs):
            if stopped_early:
                break
            result = self._train_epoch(epoch, epochs)
            self.state.next_epoch = epoch + 1
            stopped_early = self._end_epoch(result, saved=False)
        barrier(self.context)
        for sink in self.sinks:
            sink.close()
        return self._finish(started, stopped_early)

    def _train_epoch(self, epoch: int, epochs: int) -> EpochResult:
        seed_everything(self.config.train.seed, epoch)
        self.parts.train_dataset.set_epoch(epoch, epochs)
        losses = train_one_epoch(
            self.parts.model,
            self.parts.train_loader,
            len(self.parts.train_loader),
            self.parts.tools,
            self.state.steps,
            f"epoch {epoch + 1}/{epochs}",
            self.progress,
            on_first_batch=self._debug_images if epoch == 0 and self.context.is_main else None,
        )
        return self._epoch_result(epoch, epochs, losses)

    def _end_epoch(self, result: EpochResult, saved: bool) -> bool:
        """Validate (when due), save last.pt, log; returns whether to stop early.

        Args:
            result: the trained epoch.
            saved: last.pt already holds it as `pending_epoch` (a resumed validation).
        """
        if result.epoch % self.config.train.val_every == 0 or result.epoch == result.epochs:
            if self.context.is_main and not saved:
                self._save_last(pending=result)  # a crash in validation loses no training
            self._validate(result)
        if self.context.is_main:
            self._save_last()
            self._log_epoch(result)
        if self.on_epoch is not None:
            self.on_epoch(result)
        patience = self.config.train.early_stopping
        stop = bool(patience) and self.state.stale_epochs >= patience
        return bool(broadcast_from_main(stop, self.context))

    def _validate(self, result: EpochResult) -> None:
        model = self.parts.tools.ema.module if self.parts.tools.ema else self.parts.raw_model
        evaluation = evaluate_annotations(
            model,
            self.eval_images,
            self.data.class_names,
            self.parts.eval_settings,
            self.context,
            progress=self.progress,
        )
        if evaluation is None:  # not the main rank
            return
        score = decision_score(evaluation.report, self.config.train.decision_metric)
        result.evaluation, result.eval_split, result.score = (
            evaluation.report,
            self.eval_name,
            score,
        )
        if self.state.best_score is None or score > self.state.best_score:
            self.state.best_score, self.state.best_epoch = score, result.epoch
            self.state.stale_epochs = 0
            result.improved = True
            self.best_evaluation = evaluation
            self._save_best(evaluation, result.epoch)
        else:
            self.state.stale_epochs += self.config.train.val_every

    # ----- writing (main rank only) -----

    def _save_best(self, evaluation: Evaluation, epoch: int) -> None:
        report_ = evaluation.report
        manifest = artifacts.build_manifest(
            self.config,
            self.data.class_names,
            threshold=report_.threshold,
            threshold_source=f"best F1 ({'mask' if report_.threshold_source == 'segm' else 'box'})"
            f" on {self.eval_name}, epoch {epoch}",
            metrics=report_.to_row(),
        )
        artifacts.save_best(
            self.run_dir / artifacts.BEST_CHECKPOINT, self._inference_state(), manifest, epoch
        )

    def _inference_state(self) -> dict[str, torch.Tensor]:
        ema = self.parts.tools.ema
        return (ema.module if ema is not None else self.parts.raw_model).state_dict()

    def _save_last(self, pending: EpochResult | None = None) -> None:
        tools = self.parts.tools
        save_atomic(
            {
                "format": artifacts.CHECKPOINT_FORMAT,
                "model": self.parts.raw_model.state_dict(),
                "ema": tools.ema.state_dict() if tools.ema is not None else None,
                "optimizer": tools.optimizer.state_dict(),
                "scaler": tools.scaler.state_dict(),
                "epoch": self.state.next_epoch,
                "optimizer_steps": self.state.steps.optimizer_steps,
                "best_score": self.state.best_score,
                "best_epoch": self.state.best_epoch,
                "stale_epochs": self.state.stale_epochs,
                "pending_epoch": None if pending is None else pending.model_dump(mode="json"),
                "config": self.config.model_dump(mode="json"),
                "class_names": self.data.class_names,
                "model_spec": self.parts.raw_model.spec.to_dict(),
                "manifest": artifacts.build_manifest(self.config, self.data.class_names).model_dump(
                    mode="json"
                ),
            },
            self.run_dir / artifacts.LAST_CHECKPOINT,
        )

    def _log_epoch(self, result: EpochResult) -> None:
        row: dict[str, float | int] = {
            "epoch": result.epoch,
            "time_s": round(result.seconds, 2),
            "lr": result.lr,
            "train/loss": result.losses.get("loss", float("nan")),
        }
        row.update({f"train/{name}_loss": value for name, value in result.losses.items()})
        if result.evaluation is not None:
            row.update(result.evaluation.to_row())
        task = self.config.project.task
        artifacts.append_results_row(self.run_dir / artifacts.RESULTS_FILE, task, row)
        numeric = {k: float(v) for k, v in row.items() if k != "epoch" and math.isfinite(v)}
        for sink in self.sinks:
            sink.log(result.epoch, numeric)
        score = (
            ""
            if result.score is None
            else f" {self.config.train.decision_metric}={result.score:.4f}"
        )
        logger.info(
            "epoch %d/%d loss=%.4f %.1f img/s%s%s",
            result.epoch,
            result.epochs,
            row["train/loss"],
            result.images_per_second,
            score,
            " (best)" if result.improved else "",
        )

    def _debug_images(self, images: torch.Tensor, targets: list[dict[str, Any]]) -> None:
        count = self.config.augment.debug_images
        if count:
            save_debug_images(images, targets, self.run_dir / "debug", self.data.class_names, count)

    def _epoch_result(self, epoch: int, epochs: int, losses: EpochLosses) -> EpochResult:
        return EpochResult(
            epoch=epoch + 1,
            epochs=epochs,
            losses=losses.means,
            seconds=losses.seconds,
            images_per_second=losses.images * self.context.world_size / max(losses.seconds, 1e-9),
            lr=float(self.parts.tools.optimizer.param_groups[0]["lr"]),
            skipped_batches=losses.skipped,
        )

    def _finish(self, started: float, stopped_early: bool) -> TrainReport:
        files = {
            name: str(self.run_dir / name)
            for name in (
                artifacts.BEST_CHECKPOINT,
                artifacts.LAST_CHECKPOINT,
                artifacts.RESULTS_FILE,
            )
        }
        final = self.best_evaluation
        if self.context.is_main and final is None:
            final = self._evaluate_best_checkpoint()
        if self.context.is_main and final is not None:
            report(self.progress, ProgressEvent("plots", 0, None, message="writing plots"))
            files.update(
                write_run_plots(
                    self.run_dir, final, self.data.class_names, self.data.splits["train"]
                )
            )
        return TrainReport(
            run_dir=str(self.run_dir),
            epochs_completed=self.state.next_epoch,
            epochs=self.config.train.epochs,
            resumed_from_epoch=self.resumed_from,
            stopped_early=stopped_early,
            decision_metric=self.config.train.decision_metric,
            best_epoch=self.state.best_epoch,
            best_score=self.state.best_score,
            threshold=final.report.threshold if final else None,
            threshold_source=final.report.threshold_source if final else None,
            final=final.report if final else None,
            eval_split=self.eval_name,
            load=self.load,
            seconds=time.perf_counter() - started,
            files=files,
        )

    def _evaluate_best_checkpoint(self) -> Evaluation | None:
        """Re-evaluate best.pt when this process saw no new best (a resumed run), for the plots
        and the final report."""
        path = self.run_dir / artifacts.BEST_CHECKPOINT
        if not path.exists():
            return None
        model = copy.deepcopy(self.parts.raw_model)
        model.load_state_dict(load_payload(path)["model"])
        local = DistributedContext(device=self.context.device)
        return evaluate_annotations(
            model, self.eval_images, self.data.class_names, self.parts.eval_settings, local
        )


def seed_everything(seed: int, epoch: int) -> None:
    """Seed torch, numpy and random from (seed, epoch): an epoch replays identically on resume."""
    value = int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])
    torch.manual_seed(value)
    np.random.seed(value % 2**32)
    random.seed(value)
