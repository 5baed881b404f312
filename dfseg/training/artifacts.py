"""What a run writes besides the weights' state: best.pt (EMA weights + manifest), results.csv
(one row per epoch, stable columns) and the resolved project file. The folder's layout and file
names: `dfseg.structures.run_layout`."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from dfseg import __version__
from dfseg.config import ProjectConfig
from dfseg.config.tasks import GROUP_SUFFIXES, task_spec
from dfseg.metrics.semantic import SEMANTIC_COLUMNS
from dfseg.structures.manifest import ArtifactManifest, ModelDescription, Preprocessing
from dfseg.structures.run_layout import CHECKPOINT_FORMAT, RunFolder
from dfseg.training.checkpoint_io import save_atomic
from dfseg.training.distill import DISTILL_LOSS_FAMILIES
from dfseg.training.loop import LOSS_FAMILIES, MASK_LOSS_FAMILIES, SEMANTIC_LOSS_FAMILIES

if TYPE_CHECKING:
    from dfseg.metrics import EvalReport
    from dfseg.metrics.semantic import SemanticReport
    from dfseg.training.reports import EpochResult


def build_manifest(config: ProjectConfig, class_names: list[str]) -> ArtifactManifest:
    """The manifest of a checkpoint trained from `config` (default threshold; best.pt gets the
    tuned one)."""
    height, width = config.data.image_size
    return ArtifactManifest(
        format="checkpoint",
        precision="fp32",
        model=ModelDescription(
            size=config.model.size,
            num_classes=len(class_names),
            task=config.project.task,
            image_size=(height, width),
            num_queries=config.model.num_queries,
            semantic_context=config.model.semantic_context,
        ),
        class_names=class_names,
        preprocessing=Preprocessing(input_size=(height, width), keep_ratio=config.data.keep_ratio),
        decode=config.model.decode,
        nms_iou=config.model.nms_iou,
        dfseg_version=__version__,
    )


def save_best(
    path: Path, ema_state: dict[str, Any], manifest: ArtifactManifest, epoch: int
) -> None:
    """best.pt: inference weights (the EMA when used) and the manifest; plain types only."""
    save_atomic(
        {
            "format": CHECKPOINT_FORMAT,
            "model": ema_state,
            "manifest": manifest.model_dump(mode="json"),
            "epoch": epoch,
        },
        path,
    )


def write_resolved_project(config: ProjectConfig, run: RunFolder) -> Path:
    """The project file as this run used it (overrides applied, paths absolute)."""
    data = config.model_dump(mode="json")
    run.project_file.write_text(
        "# The project file as this run used it (overrides applied, paths resolved).\n"
        + yaml.safe_dump(data, sort_keys=False),
        encoding="utf-8",
    )
    return run.project_file


def results_columns(task: str, distill: bool = False) -> list[str]:
    """results.csv header: the same for every run of a task (distillation runs add their
    terms after the task's own losses)."""
    spec = task_spec(task)
    base = ["epoch", "time_s", "lr", "train/loss"]
    kd: list[str] = []
    if distill:
        kd = [
            f"train/{f}_loss"
            for f in DISTILL_LOSS_FAMILIES
            if f in ("kd_logit", "kd_feat") or not spec.semantic
        ]
        kd = [c for c in kd if spec.instance_masks or c != "train/kd_mask_loss"]
    if spec.semantic:
        return base + [f"train/{f}_loss" for f in SEMANTIC_LOSS_FAMILIES] + kd + SEMANTIC_COLUMNS
    families = [f for f in LOSS_FAMILIES if spec.instance_masks or f not in MASK_LOSS_FAMILIES]
    columns = base + [f"train/{f}_loss" for f in families] + kd
    for group in spec.metric_groups:
        suffix = GROUP_SUFFIXES[group]
        columns += [
            f"metrics/{name}({suffix})"
            for name in ("precision", "recall", "f1", "mAP50", "mAP50-95", "mean_iou")
        ]
    return [*columns, "metrics/conf_threshold"]


def results_row(result: EpochResult) -> dict[str, float | int]:
    """One epoch as results.csv's columns (metrics only when it was validated)."""
    row: dict[str, float | int] = {
        "epoch": result.epoch,
        "time_s": round(result.seconds, 2),
        "lr": result.lr,
        "train/loss": result.losses.get("loss", float("nan")),
    }
    row.update({f"train/{name}_loss": value for name, value in result.losses.items()})
    if result.evaluation is not None:
        row.update(result.evaluation.to_row())
    return row


def append_results_row(path: Path, task: str, row: dict[str, float | int]) -> None:
    """Append one epoch; missing values (no validation that epoch) are left empty."""
    columns = results_columns(task, distill=any(key.startswith("train/kd_") for key in row))
    new_file = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        if new_file:
            writer.writeheader()
        writer.writerow({c: _cell(row.get(c)) for c in columns})


def _cell(value: float | int | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


PER_CLASS_FILE = "per_class.csv"


def write_class_table(path: Path, report: EvalReport | SemanticReport) -> Path:
    """Every class's metrics (and the "all" row first) as CSV: the full validation table."""
    rows = report.class_table()
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(
            {k: _cell(v) if not isinstance(v, str) else v for k, v in row.items()} for row in rows
        )
    return path
