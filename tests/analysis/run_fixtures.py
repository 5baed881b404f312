"""A tiny trained run (size N, 256 px, 1 epoch on synthetic shapes), made once per test session
and shared by the analysis and CLI tests: it makes plenty of mistakes, which is what they need."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from dfseg.config import ProjectConfig, load_project
from dfseg.config.template import render_project_template
from dfseg.data.synthetic import generate_synthetic_dataset

TINY_SIZE = 256
CLASSES = ["circle", "square"]
RUN_OVERRIDES = {
    "train.epochs": 1,
    "train.batch_size": 4,
    "train.workers": 0,
    "train.ema_warmup": 10,
    "augment.debug_images": 0,
    "data.split.train": 0.6,
    "data.split.val": 0.4,
}


def tiny_config(project: Path, **overrides: object) -> ProjectConfig:
    values = {**RUN_OVERRIDES, **overrides}
    return load_project(project, [f"{k}={v}" for k, v in values.items()])


def trained_tiny_run(
    factory: pytest.TempPathFactory, task: str = "detect", images: int = 10
) -> tuple[Path, Path]:
    """(project file, run folder) of a tiny trained run, trained on first use in this session."""
    root = factory.getbasetemp() / f"dfseg-tiny-{task}"
    project = root / "project.yaml"
    run = root / "runs" / "tiny" / "exp"
    if (run / "best.pt").is_file():
        return project, run
    from dfseg.training.api import train_project

    root.mkdir(parents=True, exist_ok=True)
    generate_synthetic_dataset(
        root / "data", num_images=images, image_size=(TINY_SIZE, TINY_SIZE), classes=CLASSES, seed=3
    )
    project.write_text(
        render_project_template(
            name="tiny", task=task, size="n", classes=CLASSES, image_size=(TINY_SIZE, TINY_SIZE)
        )
    )
    report = train_project(tiny_config(project))
    assert report is not None and Path(report.run_dir) == run
    return project, run


def copy_run(run: Path, dest: Path) -> Path:
    """A copy of the run's best.pt and project.yaml (so tests can add exports in isolation)."""
    dest.mkdir(parents=True)
    for name in ("best.pt", "project.yaml"):
        shutil.copyfile(run / name, dest / name)
    return dest


def pseudo_labelled_dataset(run: Path, dataset: Path, dest: Path, top: int = 12) -> Path:
    """A copy of the run's dataset whose val labels are the model's own `top` best detections
    over the val split (boxes, YOLO format): torch then scores mAP ~1 on val, so an export that
    breaks accuracy shows a large drop even for a barely trained model."""
    from dfseg.analysis.predict import predict_for_evaluation
    from dfseg.runtime.predictor import load_predictor

    shutil.copytree(dataset, dest)
    val_images = [
        dest / line.strip()
        for line in (run.parent / "split" / "val.csv").read_text().splitlines()[1:]
        if line.strip()
    ]
    predictions = predict_for_evaluation(load_predictor(run, threads=1), val_images)
    cut = np.sort(np.concatenate([p.scores for p in predictions]))[-top]
    for path, prediction in zip(val_images, predictions, strict=True):
        keep = prediction.scores >= cut
        rows = [
            f"{label} {(x1 + x2) / 2 / TINY_SIZE:.6f} {(y1 + y2) / 2 / TINY_SIZE:.6f} "
            f"{(x2 - x1) / TINY_SIZE:.6f} {(y2 - y1) / TINY_SIZE:.6f}"
            for label, (x1, y1, x2, y2) in zip(
                prediction.labels[keep], prediction.boxes_xyxy[keep], strict=True
            )
        ]
        (dest / "labels" / f"{path.stem}.txt").write_text("\n".join(rows) + "\n")
    return dest
