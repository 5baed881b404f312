"""Optional experiment trackers (TensorBoard, MLflow, Weights & Biases), trainer hooks fed once
per epoch with results.csv's numbers.

results.csv is always written; these are extra hooks switched on in the project file
(`train.tensorboard`, `train.mlflow`, `train.wandb`). An enabled tracker whose package is not
installed is an error at the start of the run, not a silent no-op.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dfseg.config import ProjectConfig
from dfseg.errors import missing_dependency
from dfseg.training.hooks import TrainerHook, tracker_row

if TYPE_CHECKING:
    from dfseg.training.reports import EpochResult, TrainReport
    from dfseg.training.trainer import AnyEvaluation, Trainer


class Tracker(TrainerHook):
    """A tracker: `log` each epoch's numbers, `close` when the run ends."""

    def log(self, step: int, values: dict[str, float]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def on_epoch_end(self, trainer: Trainer, result: EpochResult) -> None:
        self.log(result.epoch, tracker_row(result))

    def on_train_end(
        self, trainer: Trainer, result: TrainReport, final: AnyEvaluation | None
    ) -> None:
        self.close()


class TensorBoardTracker(Tracker):
    """Scalars under `<run>/tensorboard` (open with `tensorboard --logdir runs`)."""

    def __init__(self, run_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise missing_dependency("tensorboard", "dev", "train.tensorboard") from None
        self._writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def log(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self._writer.add_scalar(name, value, step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class MlflowTracker(Tracker):
    """One MLflow run per dfseg run, in an experiment named after the project."""

    def __init__(self, run_dir: Path, experiment: str, params: dict[str, Any]) -> None:
        try:
            import mlflow
        except ImportError:
            raise missing_dependency("mlflow", "dev", "train.mlflow") from None
        self._mlflow = mlflow
        mlflow.set_experiment(experiment)
        mlflow.start_run(run_name=run_dir.name)
        mlflow.log_params(params)

    def log(self, step: int, values: dict[str, float]) -> None:
        self._mlflow.log_metrics(values, step=step)

    def close(self) -> None:
        self._mlflow.end_run()


class WandbTracker(Tracker):
    """A W&B run (set WANDB_MODE=offline to log without an account)."""

    def __init__(self, run_dir: Path, project: str, config: dict[str, Any]) -> None:
        try:
            import wandb
        except ImportError:
            raise missing_dependency("wandb", "dev", "train.wandb") from None
        self._run = wandb.init(project=project, name=run_dir.name, dir=str(run_dir), config=config)

    def log(self, step: int, values: dict[str, float]) -> None:
        self._run.log(values, step=step)

    def close(self) -> None:
        self._run.finish()


def build_trackers(config: ProjectConfig, run_dir: Path) -> list[Tracker]:
    """The trackers the project enables (empty list when none)."""
    flat = _flat_params(config)
    trackers: list[Tracker] = []
    if config.train.tensorboard:
        trackers.append(TensorBoardTracker(run_dir))
    if config.train.mlflow:
        trackers.append(MlflowTracker(run_dir, config.project.name, flat))
    if config.train.wandb:
        trackers.append(WandbTracker(run_dir, config.project.name, config.model_dump(mode="json")))
    return trackers


def _flat_params(config: ProjectConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for section in ("model", "train"):
        for key, value in config.model_dump(mode="json")[section].items():
            out[f"{section}.{key}"] = value
    return out
