"""What the trainer is given: its parts (model, loaders, optimizer, ...) and its loop settings,
built from the project by `dfseg.training.setup`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from dfseg.config.train import DecisionMetric
from dfseg.data.dataset import InstanceDataset
from dfseg.nn import DFine
from dfseg.nn.semantic_model import DFineSemantic
from dfseg.training.evaluation import EvalSettings
from dfseg.training.loop import StepTools


@dataclass
class TrainingParts:
    """Everything the epoch loop uses."""

    model: nn.Module  # DistributedDataParallel-wrapped when distributed
    raw_model: DFine | DFineSemantic
    tools: StepTools
    train_dataset: InstanceDataset
    train_loader: torch.utils.data.DataLoader
    eval_settings: EvalSettings
    steps_per_epoch: int


@dataclass(frozen=True)
class LoopSettings:
    """How the epochs run.

    Attributes:
        epochs: total epochs of the run.
        val_every: validate every N epochs (and after the last).
        seed: seeds every epoch's randomness together with the epoch number.
        decision_metric: what picks best.pt and counts as improvement.
        resume_payload: plain data saved in last.pt beside the weights for `--resume`: the
            project (`config`) and the checkpoint manifest (`manifest`).
        time_budget: minutes; the run trains as many of `epochs` as fit (None: all of them).
        freeze_backbone_epochs: the backbone's weights are frozen for the first N epochs.
        ema_warmup_fitted: the EMA warm-up follows the run's length (re-fitted with the plan).
    """

    epochs: int
    val_every: int = 1
    seed: int = 0
    decision_metric: DecisionMetric = "map50_95"
    resume_payload: dict[str, Any] = field(default_factory=dict)
    time_budget: float | None = None
    freeze_backbone_epochs: int = 0
    ema_warmup_fitted: bool = False
