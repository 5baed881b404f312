from __future__ import annotations

from pathlib import Path

from dfseg.config import ProjectConfig, load_project
from dfseg.config.template import render_project_template
from dfseg.data.synthetic import generate_synthetic_dataset

TINY_SIZE = 256  # the smallest square input where size N has >= 300 anchors (16^2 + 8^2)


def tiny_project(root: Path, task: str = "detect", images: int = 12, **train: object) -> Path:
    """A synthetic shapes project for size N at 256 px with fast training settings."""
    generate_synthetic_dataset(
        root / "data",
        num_images=images,
        image_size=(TINY_SIZE, TINY_SIZE),
        classes=("circle", "square"),
        seed=3,
    )
    text = render_project_template(
        name="tiny",
        task=task,
        size="n",
        classes=["circle", "square"],
        image_size=(TINY_SIZE, TINY_SIZE),
    )
    path = root / "project.yaml"
    path.write_text(text)
    return path


def tiny_config(path: Path, **overrides: object) -> ProjectConfig:
    defaults = {
        "train.epochs": 2,
        "train.batch_size": 4,
        "train.workers": 0,
        "train.ema_warmup": 10,
        "augment.debug_images": 2,
        "data.split.val": 0.34,
        "data.split.train": 0.66,
    }
    defaults.update(overrides)
    return load_project(path, [f"{k}={v}" for k, v in defaults.items()])
