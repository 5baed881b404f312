"""`Trainer`: the epoch loop with validation and exact resume; everything else is a hook.

Exact resume: everything random in an epoch is seeded from (seed, epoch) at its start, and
`last.pt` (written atomically after every epoch) holds model, EMA, optimizer, scaler, the optimizer
step count (the schedule is a pure function of it), the epoch and the best score. A run killed at
any moment loses at most the epoch in progress: an epoch that is validated is saved before its
validation too (marked `pending_epoch`), so a crash in validation resumes with that validation.

The trainer takes explicit arguments built once from the project at the edge
(`dfseg.training.setup`); best.pt, early stopping, the results file, trackers, debug images and
plots are `TrainerHook`s (`dfseg.training.hooks`).
"""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from dfseg.config.tasks import task_spec
from dfseg.nn import DFine
from dfseg.nn.dfine_decoder import QUERY_GROUP_PREFIX
from dfseg.structures.progress import ProgressCallback
from dfseg.structures.run_layout import CHECKPOINT_FORMAT, RunFolder
from dfseg.training.budget import TimeBudget
from dfseg.training.checkpoint_io import load_payload, save_atomic
from dfseg.training.distributed import DistributedContext, barrier, broadcast_from_main
from dfseg.training.ema import fitted_warmup
from dfseg.training.evaluation import (
    DEFAULT_THRESHOLD,
    Evaluation,
    decision_score,
    evaluate_annotations,
)
from dfseg.training.hooks import TrainerHook, run_files
from dfseg.training.loop import EpochLosses, StepState, train_one_epoch
from dfseg.training.optim import BackboneFreeze, build_optimizer, optimizer_kind
from dfseg.training.parts import LoopSettings, TrainingParts
from dfseg.training.project_data import ProjectData
from dfseg.training.reports import EpochResult, LoadSummary, TrainReport
from dfseg.training.semantic_evaluation import SemanticEvaluation, evaluate_semantic

logger = logging.getLogger("dfseg.train")

AnyEvaluation = Evaluation | SemanticEvaluation


@dataclass
class RunState:
    """Progress of the run (saved in last.pt)."""

    next_epoch: int = 0
    best_score: float | None = None
    best_epoch: int | None = None
    stale_epochs: int = 0
    steps: StepState = field(default_factory=StepState)
    threshold: float | None = None  # the last F1-best threshold a validation found
    threshold_epoch: int | None = None
    planned_epochs: int | None = None  # set by a time budget


class Trainer:
    """Runs the epochs of one training run (on every rank; only rank 0 writes and runs hooks).

    Args:
        parts: model, loaders, criterion, optimizer, schedule, EMA (`build_training_parts`).
        data: the dataset and its splits.
        context: the process's place in a distributed run (or a single process).
        run: the run folder.
        settings: the loop's settings.
        hooks: called in order on the main process (see `TrainerHook`).
        load: what loading the starting weights did, for the report.
        progress: optional callback for the loop's progress events.
    """

    def __init__(
        self,
        parts: TrainingParts,
        data: ProjectData,
        context: DistributedContext,
        run: RunFolder,
        settings: LoopSettings,
        hooks: Sequence[TrainerHook] = (),
        load: LoadSummary | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.parts = parts
        self.data = data
        self.context = context
        self.run = run
        self.settings = settings
        self.hooks = list(hooks) if context.is_main else []
        self.load = load
        self.progress = progress if context.is_main else None
        self.state = RunState()
        self.eval_name, self.eval_images = data.eval_split("val")
        self.best_evaluation: AnyEvaluation | None = None
        self.resumed_from: int | None = None
        self.pending: EpochResult | None = None  # trained, saved, not yet validated (resume)
        self._stop_requested = False
        self._freeze = BackboneFreeze()
        self.budget = (
            TimeBudget.from_minutes(settings.time_budget, settings.epochs, settings.val_every)
            if settings.time_budget is not None
            else None
        )

    def request_stop(self) -> None:
        """End the run after the current epoch (a hook's decision, e.g. early stopping)."""
        self._stop_requested = True

    # ----- resume -----

    def restore(self, payload: dict[str, Any]) -> None:
        """Continue from a last.pt payload (same epoch, schedule position, EMA, optimizer)."""
        tools = self.parts.tools
        self.parts.raw_model.load_state_dict(payload["model"])
        saved = optimizer_kind(payload["optimizer"])
        if saved != tools.optimizer_settings.name:
            # a run started with the other optimizer (e.g. AdamW, the default before
            # `optimizer: auto`) goes on with it
            tools.optimizer_settings = replace(tools.optimizer_settings, name=saved)
            extra = tools.distiller.trainable() if tools.distiller is not None else None
            tools.optimizer = build_optimizer(self.parts.raw_model, tools.optimizer_settings, extra)
        tools.optimizer.load_state_dict(payload["optimizer"])
        tools.scaler.load_state_dict(payload["scaler"])
        if tools.distiller is not None and payload.get("distill") is not None:
            tools.distiller.load_state_for_resume(payload["distill"])
        if tools.ema is not None and payload.get("ema") is not None:
            tools.ema.load_state_dict(payload["ema"])
        self.state = RunState(
            next_epoch=int(payload["epoch"]),
            best_score=payload.get("best_score"),
            best_epoch=payload.get("best_epoch"),
            stale_epochs=int(payload.get("stale_epochs", 0)),
            steps=StepState(optimizer_steps=int(payload["optimizer_steps"])),
            threshold=payload.get("threshold"),
            threshold_epoch=payload.get("threshold_epoch"),
        )
        if self.budget is not None and payload.get("budget") is not None:
            # re-planned with the (possibly new) budget and epochs the resumed run was given
            self.budget.load_state_dict(payload["budget"])
            self._plan_from_budget(self.state.next_epoch)
        self.resumed_from = self.state.next_epoch
        if payload.get("pending_epoch") is not None:
            self.pending = EpochResult.model_validate(payload["pending_epoch"])

    # ----- the run -----

    def fit(self) -> TrainReport:
        started = time.perf_counter()
        stopped_early = False
        pending, self.pending = self.pending, None
        if pending is not None:  # resumed after a crash in this epoch's validation
            stopped_early = self._end_epoch(pending, saved=True)
        while self.state.next_epoch < self.planned_epochs and not stopped_early:
            epoch = self.state.next_epoch
            epoch_started = time.perf_counter()
            result = self._train_epoch(epoch, self.planned_epochs)
            self.state.next_epoch = epoch + 1
            self._replan(result, time.perf_counter() - epoch_started)
            stopped_early = self._end_epoch(result, saved=False)
        barrier(self.context)
        return self._finish(started, stopped_early)

    @property
    def planned_epochs(self) -> int:
        """Epochs of the run: `train.epochs`, or as many as fit in `train.time_budget`."""
        return self.state.planned_epochs or self.settings.epochs

    def _replan(self, result: EpochResult, train_seconds: float) -> None:
        """With a time budget: lay the run out for the epochs that fit, given this epoch's cost
        (the lr schedule and the mosaic-off window follow the plan)."""
        budget = self.budget
        if budget is None:
            return
        budget.record_training(train_seconds)
        due = result.epoch % self.settings.val_every == 0
        self._plan_from_budget(result.epoch, validation_pending=due)
        result.epochs = self.planned_epochs

    def _plan_from_budget(self, done: int, validation_pending: bool = False) -> None:
        """Rank 0's plan for the budget on every rank, and the schedule laid out for it."""
        assert self.budget is not None
        planned = self.budget.planned_epochs(done, validation_pending)
        planned = int(broadcast_from_main(planned, self.context))
        self.state.planned_epochs = planned
        tools = self.parts.tools
        total_steps = max(1, self.parts.steps_per_epoch * planned)
        tools.schedule = replace(tools.schedule, total_steps=total_steps)
        if tools.ema is not None and self.settings.ema_warmup_fitted:
            tools.ema.warmup_updates = fitted_warmup(total_steps)

    def _train_epoch(self, epoch: int, epochs: int) -> EpochResult:
        seed_everything(self.settings.seed, epoch)
        self.parts.train_dataset.set_epoch(epoch, epochs)
        frozen = epoch < self.settings.freeze_backbone_epochs
        if self._freeze.set(self.parts.raw_model, frozen) and self.context.is_main:
            logger.info("epoch %d: backbone %s", epoch + 1, "frozen" if frozen else "unfrozen")
        losses = train_one_epoch(
            self.parts.model,
            self.parts.train_loader,
            len(self.parts.train_loader),
            self.parts.tools,
            self.state.steps,
            f"epoch {epoch + 1}/{epochs}",
            self.progress,
            on_first_batch=self._first_batch if epoch == 0 and self.hooks else None,
        )
        return self._epoch_result(epoch, epochs, losses)

    def _end_epoch(self, result: EpochResult, saved: bool) -> bool:
        """Validate (when due), save last.pt, run the hooks; returns whether to stop early.

        Args:
            result: the trained epoch.
            saved: last.pt already holds it as `pending_epoch` (a resumed validation).
        """
        if result.epoch % self.settings.val_every == 0 or result.epoch == result.epochs:
            if self.context.is_main and not saved:
                self._save_last(pending=result)  # a crash in validation loses no training
            validation_started = time.perf_counter()
            self._validate(result)
            if self.budget is not None:  # the plan, now that validation's cost is known
                self.budget.record_validation(time.perf_counter() - validation_started)
                self._plan_from_budget(result.epoch)
        if self.context.is_main:
            self._save_last()
        for hook in self.hooks:
            hook.on_epoch_end(self, result)
        return bool(broadcast_from_main(self._stop_requested, self.context))

    def _evaluate(
        self,
        model: torch.nn.Module,
        context: DistributedContext,
        progress: ProgressCallback | None = None,
    ) -> AnyEvaluation | None:
        """The evaluation split through `model` (on the main rank; None on the others)."""
        settings = self.parts.eval_settings
        if task_spec(settings.task).semantic:
            return evaluate_semantic(
                model, self.eval_images, self.data.class_names, settings, context, progress
            )
        return evaluate_annotations(
            model,
            self.eval_images,
            self.data.class_names,
            settings,
            context,
            progress=progress,
            fallback_threshold=(
                self.state.threshold if self.state.threshold is not None else DEFAULT_THRESHOLD
            ),
        )

    def _validate(self, result: EpochResult) -> None:
        evaluation = self._evaluate(self.inference_model(), self.context, self.progress)
        if evaluation is None:  # not the main rank
            return
        if isinstance(evaluation, Evaluation):
            self._track_threshold(evaluation, result)
        score = decision_score(evaluation.report, self.settings.decision_metric)
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
        else:
            self.state.stale_epochs += self.settings.val_every
        for hook in self.hooks:
            hook.on_validation(self, result, evaluation)

    def _track_threshold(self, evaluation: Evaluation, result: EpochResult) -> None:
        """Remember the F1-best threshold, or say why the last one is kept."""
        if evaluation.report.threshold_source == "fallback":
            logger.warning(
                "epoch %d: no prediction matched an object on %s (F1 0 at every confidence); "
                "keeping the threshold %.3f (%s)",
                result.epoch,
                self.eval_name,
                evaluation.report.threshold,
                f"found at epoch {self.state.threshold_epoch}"
                if self.state.threshold_epoch is not None
                else "the default",
            )
        else:
            self.state.threshold = evaluation.report.threshold
            self.state.threshold_epoch = result.epoch

    def _first_batch(self, images: torch.Tensor, targets: list[dict[str, Any]]) -> None:
        for hook in self.hooks:
            hook.on_first_batch(self, images, targets)

    # ----- state (main rank writes) -----

    def inference_model(self) -> torch.nn.Module:
        """The weights inference uses: the EMA when there is one."""
        ema = self.parts.tools.ema
        return ema.module if ema is not None else self.parts.raw_model

    def inference_state(self) -> dict[str, torch.Tensor]:
        """best.pt's weights: without the extra query groups' heads, which only training uses."""
        return {
            key: value
            for key, value in self.inference_model().state_dict().items()
            if not key.startswith(QUERY_GROUP_PREFIX)
        }

    def _save_last(self, pending: EpochResult | None = None) -> None:
        tools = self.parts.tools
        save_atomic(
            {
                "format": CHECKPOINT_FORMAT,
                "model": self.parts.raw_model.state_dict(),
                "ema": tools.ema.state_dict() if tools.ema is not None else None,
                "optimizer": tools.optimizer.state_dict(),
                "scaler": tools.scaler.state_dict(),
                "distill": (
                    tools.distiller.state_dict_for_resume() if tools.distiller is not None else None
                ),
                "epoch": self.state.next_epoch,
                "optimizer_steps": self.state.steps.optimizer_steps,
                "best_score": self.state.best_score,
                "best_epoch": self.state.best_epoch,
                "stale_epochs": self.state.stale_epochs,
                "threshold": self.state.threshold,
                "threshold_epoch": self.state.threshold_epoch,
                "budget": self.budget.state_dict() if self.budget is not None else None,
                "pending_epoch": None if pending is None else pending.model_dump(mode="json"),
                **self.settings.resume_payload,
            },
            self.run.last,
        )

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
        final = self.best_evaluation
        if self.context.is_main and final is None:
            final = self._evaluate_best_checkpoint()
        threshold = final.report if isinstance(final, Evaluation) else None
        result = TrainReport(
            run_dir=str(self.run.path),
            epochs_completed=self.state.next_epoch,
            epochs=self.planned_epochs,
            time_budget=self.settings.time_budget,
            max_epochs=self.settings.epochs,
            resumed_from_epoch=self.resumed_from,
            stopped_early=stopped_early,
            decision_metric=self.settings.decision_metric,
            best_epoch=self.state.best_epoch,
            best_score=self.state.best_score,
            threshold=threshold.threshold if threshold else None,
            threshold_source=threshold.threshold_source if threshold else None,
            final=final.report if final else None,
            eval_split=self.eval_name,
            load=self.load,
            seconds=time.perf_counter() - started,
            files=run_files(self.run),
        )
        for hook in self.hooks:
            hook.on_train_end(self, result, final)
        return result

    def _evaluate_best_checkpoint(self) -> AnyEvaluation | None:
        """Re-evaluate best.pt when this process saw no new best (a resumed run), for the plots
        and the final report."""
        if not self.run.best.exists():
            return None
        model = copy.deepcopy(self.parts.raw_model)
        if isinstance(model, DFine):
            model.decoder.set_query_groups(1)  # best.pt has no extra query groups
        model.load_state_dict(load_payload(self.run.best)["model"])
        return self._evaluate(model, DistributedContext(device=self.context.device))


def seed_everything(seed: int, epoch: int) -> None:
    """Seed torch, numpy and random from (seed, epoch): an epoch replays identically on resume."""
    value = int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])
    torch.manual_seed(value)
    np.random.seed(value % 2**32)
    random.seed(value)
