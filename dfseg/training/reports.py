"""Report models the trainer returns (the CLI renders them; `--json` dumps them)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from dfseg.metrics import EvalReport
from dfseg.metrics.semantic import SemanticReport

AnyReport = EvalReport | SemanticReport


class LoadSummary(BaseModel):
    """What loading the starting weights did (never silent)."""

    source: str
    kept: int
    reinitialized: list[str]
    mapped_classes: dict[str, int] = Field(default_factory=dict)
    rebuilt: list[str]
    ignored: list[str]


class EpochResult(BaseModel):
    """One finished epoch."""

    model_config = ConfigDict(ser_json_inf_nan="strings")

    epoch: int = Field(description="1-based.")
    epochs: int
    losses: dict[str, float]
    seconds: float
    images_per_second: float
    lr: float
    skipped_batches: int = 0
    evaluation: AnyReport | None = None
    eval_split: str | None = None
    score: float | None = None
    improved: bool = False


class TrainReport(BaseModel):
    """A whole run."""

    model_config = ConfigDict(ser_json_inf_nan="strings")

    run_dir: str
    epochs_completed: int
    epochs: int = Field(description="Epochs of the run (as many as fit when time_budget is set).")
    time_budget: float | None = Field(None, description="train.time_budget in minutes.")
    max_epochs: int | None = Field(None, description="train.epochs (the most a budget allows).")
    resumed_from_epoch: int | None = None
    stopped_early: bool = False
    decision_metric: str
    best_epoch: int | None = None
    best_score: float | None = None
    threshold: float | None = None
    threshold_source: str | None = None
    final: AnyReport | None = None
    eval_split: str | None = None
    load: LoadSummary | None = None
    seconds: float = 0.0
    files: dict[str, str] = Field(default_factory=dict)
