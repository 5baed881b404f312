"""The trainer hook `dfseg train` adds: each epoch printed as it ends (imported only when training
runs: it pulls in torch)."""

from __future__ import annotations

from dfseg.cli import render
from dfseg.training.hooks import TrainerHook
from dfseg.training.reports import EpochResult
from dfseg.training.trainer import Trainer

EPOCH_CLASSES = 10  # per-class rows after each validation; the run's end shows them all


class EpochPrinter(TrainerHook):
    """One line per epoch (time, speed, losses) and, after a validation, the table."""

    def __init__(self, progress: render.ProgressRenderer) -> None:
        self.progress = progress

    def on_epoch_end(self, trainer: Trainer, result: EpochResult) -> None:
        losses = "  ".join(f"{k}={v:.3f}" for k, v in result.losses.items())
        self.progress.print(
            f"epoch {result.epoch}/{result.epochs}  {result.seconds:.0f}s  "
            f"{result.images_per_second:.1f} img/s  {losses}"
        )
        if result.skipped_batches:
            render.warn(f"{result.skipped_batches} batches skipped: non-finite loss")
        if result.evaluation is not None:
            best = " (best)" if result.improved else ""
            title = f"{result.eval_split}{best}"
            table = render.eval_table(result.evaluation, title, max_classes=EPOCH_CLASSES)
            self.progress.print(table)
