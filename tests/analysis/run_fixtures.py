"""A tiny trained run (size N, 256 px, 1 epoch on synthetic shapes), made once per test session
and shared by the analysis and CLI tests: it makes plenty of mistakes, which is what they need."""

from __future__ import annotations

from pathlib import Path

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
