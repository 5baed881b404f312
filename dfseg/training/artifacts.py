"""What a run writes: `last.pt` (everything to resume), `best.pt` (EMA weights + manifest),
`results.csv` (one row per epoch, stable columns) and the resolved project file."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import yaml

from dfseg import __version__
from dfseg.config import ProjectConfig
from dfseg.structures.manifest import ArtifactManifest, ModelDescription, Preprocessing
from dfseg.training.checkpoint_io import save_atomic
from dfseg.training.loop import LOSS_FAMILIES

CHECKPOINT_FORMAT = "dfseg-checkpoint"
LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
RESULTS_FILE = "results.csv"
RESOLVED_PROJECT = "project.yaml"


def build_manifest(
    config: ProjectConfig,
    class_names: list[str],
    threshold: float = 0.5,
    threshold_source: str = "default",
    metrics: dict[str, float] | None = None,
) -> ArtifactManifest:
    """The manifest of a checkpoint trained from `config`."""
    height, width = config.data.image_size
    return ArtifactManifest(
        format="checkpoint",
        precision="fp32",
        model=ModelDescription(
            size=config.model.size,
            num_classes=len(class_names),
            task=config.project.task,
            image_size=(height, width),
        ),
        class_names=class_names,
        preprocessing=Preprocessing(input_size=(height, width), keep_ratio=config.data.keep_ratio),
        threshold=threshold,
        threshold_source=threshold_source,
        metrics={k: v for k, v in (metrics or {}).items() if math.isfinite(v)},
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


def write_resolved_project(config: ProjectConfig, run_dir: Path) -> Path:
    """The project file as this run used it (overrides applied, paths absolute)."""
    path = run_dir / RESOLVED_PROJECT
    data = config.model_dump(mode="json")
    path.write_text(
        "# The project file as this run used it (overrides applied, paths resolved).\n"
        + yaml.safe_dump(data, sort_keys=False),
        encoding="utf-8",
    )
    return path


def results_columns(task: str) -> list[str]:
    """results.csv header: the same for every run of a task."""
    families = [f for f in LOSS_FAMILIES if task == "segment" or not f.startswith("mask")]
    columns = ["epoch", "time_s", "lr", "train/loss"] + [f"train/{f}_loss" for f in families]
    groups = ["B", "M"] if task == "segment" else ["B"]
    for group in groups:
        columns += [
            f"metrics/{name}({group})"
            for name in ("precision", "recall", "f1", "mAP50", "mAP50-95", "mean_iou")
        ]
    return [*columns, "metrics/conf_threshold"]


def append_results_row(path: Path, task: str, row: dict[str, float | int]) -> None:
    """Append one epoch; missing values (no validation that epoch) are left empty."""
    columns = results_columns(task)
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
