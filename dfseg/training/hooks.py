"""The trainer's one extension point: `TrainerHook` (detectron2's `HookBase`, Ultralytics'
callbacks). Everything a run does beside the epoch loop is a hook: the results file and log
line, best.pt, early stopping, experiment trackers, debug images and the plots; the CLI adds
one that prints each epoch.

Hooks run on the main process only, in the order given, after the trainer has done its own part
of the step (last.pt is written before `on_epoch_end`, so a hook that raises loses nothing).
Override the methods you need:

    class PrintLoss(TrainerHook):
        def on_epoch_end(self, trainer, result):
            print(result.epoch, result.losses["loss"])
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from dfseg.data.debug_images import save_debug_images
from dfseg.metrics.semantic import SemanticReport, plot_semantic_confusion
from dfseg.runtime.threads import adapt_threads, collapse_hint
from dfseg.structures import ImageAnnotation
from dfseg.structures.manifest import ArtifactManifest
from dfseg.structures.progress import ProgressEvent, report
from dfseg.structures.run_layout import RunFolder
from dfseg.training import artifacts
from dfseg.training.run_plots import write_run_plots

if TYPE_CHECKING:
    from dfseg.metrics import EvalReport
    from dfseg.training.reports import EpochResult, TrainReport
    from dfseg.training.trainer import AnyEvaluation, Trainer

logger = logging.getLogger("dfseg.train")


class TrainerHook:
    """Base class of the trainer's hooks: every method does nothing by default."""

    def on_first_batch(
        self, trainer: Trainer, images: Tensor, targets: list[dict[str, Any]]
    ) -> None:
        """The run's first training batch (after augmentation), before it is used."""

    def on_validation(
        self, trainer: Trainer, result: EpochResult, evaluation: AnyEvaluation
    ) -> None:
        """An epoch was validated: `result` has its score and whether it improved."""

    def on_epoch_end(self, trainer: Trainer, result: EpochResult) -> None:
        """An epoch is done (trained, validated when due, saved in last.pt)."""

    def on_train_end(
        self, trainer: Trainer, result: TrainReport, final: AnyEvaluation | None
    ) -> None:
        """The run is over; `final` is the best checkpoint's evaluation (None without one)."""


class ResultsLog(TrainerHook):
    """One row per epoch in results.csv and one line in train.log."""

    def __init__(self, task: str, decision_metric: str) -> None:
        self.task = task
        self.decision_metric = decision_metric

    def on_epoch_end(self, trainer: Trainer, result: EpochResult) -> None:
        row = artifacts.results_row(result)
        artifacts.append_results_row(trainer.run.results, self.task, row)
        score = "" if result.score is None else f" {self.decision_metric}={result.score:.4f}"
        logger.info(
            "epoch %d/%d loss=%.4f %.1f img/s%s%s",
            result.epoch,
            result.epochs,
            row["train/loss"],
            result.images_per_second,
            score,
            " (best)" if result.improved else "",
        )

    def on_train_end(
        self, trainer: Trainer, result: TrainReport, final: AnyEvaluation | None
    ) -> None:
        if final is not None:  # the whole table of the best checkpoint, every class
            path = artifacts.write_class_table(
                trainer.run.path / artifacts.PER_CLASS_FILE, final.report
            )
            result.files["per_class"] = str(path)


class BestCheckpoint(TrainerHook):
    """best.pt (the inference weights and the manifest with the tuned threshold) whenever the
    decision metric improves."""

    def __init__(self, manifest: ArtifactManifest, split: str) -> None:
        self.manifest = manifest
        self.split = split

    def on_validation(
        self, trainer: Trainer, result: EpochResult, evaluation: AnyEvaluation
    ) -> None:
        if not result.improved:
            return
        evaluated = evaluation.report
        update: dict[str, Any] = {
            "metrics": {k: v for k, v in evaluated.to_row().items() if math.isfinite(v)}
        }
        if isinstance(evaluated, SemanticReport):  # a class per pixel: no confidence threshold
            update["threshold_source"] = f"not used (semantic), mIoU on {self.split}"
        else:
            update["threshold"] = evaluated.threshold
            update["threshold_source"] = threshold_description(
                trainer, evaluated, self.split, result
            )
        manifest = self.manifest.model_copy(update=update)
        artifacts.save_best(trainer.run.best, trainer.inference_state(), manifest, result.epoch)


def threshold_description(
    trainer: Trainer, evaluated: EvalReport, split: str, result: EpochResult
) -> str:
    """How best.pt's threshold was chosen, as the manifest records it."""
    if evaluated.threshold_source == "fallback":
        found = trainer.state.threshold_epoch
        kept = f"kept from epoch {found}" if found is not None else "the default"
        return f"{kept}: no prediction matched an object on {split} at epoch {result.epoch}"
    group = "mask" if evaluated.threshold_source == "segm" else "box"
    return f"best F1 ({group}) on {split}, epoch {result.epoch}"


class EarlyStopping(TrainerHook):
    """Stop after `patience` epochs without improvement of the decision metric (0: never)."""

    def __init__(self, patience: int) -> None:
        self.patience = patience

    def on_epoch_end(self, trainer: Trainer, result: EpochResult) -> None:
        if self.patience and trainer.state.stale_epochs >= self.patience:
            trainer.request_stop()


class DebugImages(TrainerHook):
    """The first augmented batch of the run drawn to `<run>/debug` (what the model sees)."""

    def __init__(self, count: int, class_names: list[str]) -> None:
        self.count = count
        self.class_names = class_names

    def on_first_batch(
        self, trainer: Trainer, images: Tensor, targets: list[dict[str, Any]]
    ) -> None:
        if self.count:
            debug = trainer.run.path / "debug"
            save_debug_images(images, targets, debug, self.class_names, self.count)


class RunPlots(TrainerHook):
    """PR and F1/P/R curves, confusion matrices, label distribution and a validation grid of the
    best checkpoint, written when the run ends."""

    def __init__(self, class_names: list[str], train_images: list[ImageAnnotation]) -> None:
        self.class_names = class_names
        self.train_images = train_images

    def on_train_end(
        self, trainer: Trainer, result: TrainReport, final: AnyEvaluation | None
    ) -> None:
        if final is None:
            return
        report(trainer.progress, ProgressEvent("plots", 0, None, message="writing plots"))
        if isinstance(final.report, SemanticReport):
            path = plot_semantic_confusion(final.report, trainer.run.path / "confusion_matrix.png")
            result.files["confusion_matrix"] = str(path)
            return
        result.files.update(
            write_run_plots(trainer.run.path, final, self.class_names, self.train_images)
        )


class ThroughputWatch(TrainerHook):
    """When an epoch runs at under a third of the run's best speed (another process took the
    cores: threads then wait for each other), a hint naming DFSEG_THREADS; with `adapt` (the
    thread count was chosen, not given) the cores are sampled again and torch uses fewer threads
    when fewer are free (`dfseg.runtime.threads`)."""

    def __init__(self, adapt: bool = False) -> None:
        self.best = 0.0
        self.adapt = adapt

    def on_epoch_end(self, trainer: Trainer, result: EpochResult) -> None:
        hint = collapse_hint(result.images_per_second, self.best)
        self.best = max(self.best, result.images_per_second)
        if hint is None:
            return
        fewer = adapt_threads(torch.get_num_threads()) if self.adapt else None
        if fewer is not None:
            torch.set_num_threads(fewer.threads)
            hint += f"; now using {fewer.describe()}"
        logger.warning(hint)
        report(trainer.progress, ProgressEvent("run", 0, None, message=f"warning: {hint}"))


def tracker_row(result: EpochResult) -> dict[str, float]:
    """The epoch's numbers for an experiment tracker (results.csv's columns, finite ones)."""
    row = artifacts.results_row(result)
    return {k: float(v) for k, v in row.items() if k != "epoch" and math.isfinite(v)}


def run_files(run: RunFolder) -> dict[str, str]:
    """The files every run has, for the report."""
    return {path.name: str(path) for path in (run.best, run.last, run.results)}


__all__ = [
    "BestCheckpoint",
    "DebugImages",
    "EarlyStopping",
    "ResultsLog",
    "RunPlots",
    "ThroughputWatch",
    "TrainerHook",
    "run_files",
    "tracker_row",
]
