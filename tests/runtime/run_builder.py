"""A fake but complete training run for runtime, export and CLI tests, made without training:
synthetic data, a project file, a split, and a best.pt saved by the trainer's own functions from
a randomly initialised N model with realistic activation scales. Shared by tests/runtime,
tests/export and tests/cli (they put this folder on sys.path)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from dfseg.config import load_project
from dfseg.config.template import render_project_template
from dfseg.data.synthetic import generate_synthetic_dataset
from dfseg.nn import DFine
from dfseg.nn.build import build_model
from dfseg.structures.run_layout import RunFolder
from dfseg.training import artifacts
from dfseg.training.project_data import load_project_data

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nn"))
from dfine_test_helpers import conditioned_model

CLASSES = ["circle", "square", "triangle"]
SIZE = 256


def calibrated_model(task: str, image_size: tuple[int, int], seed: int = 0) -> DFine:
    """The nn tests' well-conditioned random N model (see `conditioned_model`), with score heads
    scaled up so that scores are spread out."""
    model = conditioned_model("n", task, image_size, num_classes=len(CLASSES), seed=seed)
    with torch.no_grad():
        for name, parameter in model.decoder.named_parameters():
            if "score_head" in name and name.endswith("weight"):
                # Spread the scores like a trained model's: with the near-equal scores of a fresh
                # head, 1e-4 rounding differences between engines reorder the encoder's query
                # selection and no two backends agree on anything.
                parameter.mul_(4.0)
    return model


def semantic_model(image_size: tuple[int, int], num_classes: int, seed: int) -> nn.Module:
    """A random N semantic model in eval mode with its classifier scaled so that the class
    logits spread with a standard deviation of ~3 over the classes, as a trained model's (the
    fresh head's ~1e-4 logits would let 1e-7 rounding flip pixels between engines)."""
    torch.manual_seed(seed)
    model = build_model("n", num_classes, "semantic", image_size).eval()
    with torch.no_grad():
        logits = model(torch.rand(1, 3, *image_size))["semantic_logits"]
        spread = float(logits.std(dim=1).mean())
        model.semantic_head.classifier.weight.mul_(3.0 / spread)
    return model


def write_run(
    root: Path,
    task: str = "segment",
    keep_ratio: bool = False,
    images: int = 8,
    image_hw: tuple[int, int] = (SIZE, SIZE),
    threshold: float = 0.02,
    size: int = SIZE,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Write data, project.yaml, split and `<output>/tiny/exp/{best.pt,project.yaml}` under
    `root`; returns (project file, run folder). The model has D-FINE's 300 queries. A semantic
    run's classes are "background" + `CLASSES` (its polygons rasterised)."""
    root.mkdir(parents=True, exist_ok=True)
    generate_synthetic_dataset(
        root / "data", num_images=images, image_size=image_hw, classes=CLASSES, seed=1
    )
    project = root / "project.yaml"
    text = render_project_template(
        name="tiny", task=task, size="n", classes=CLASSES, image_size=(size, size)
    )
    project.write_text(text.replace("num_queries: 100", "num_queries: 300"))  # D-FINE's count
    config = load_project(project, [f"data.keep_ratio={str(keep_ratio).lower()}"])
    if keep_ratio:
        text = project.read_text().replace("keep_ratio: false", "keep_ratio: true")
        project.write_text(text)
    load_project_data(config, create_split=True)
    run = RunFolder.create(config.output_root)
    artifacts.write_resolved_project(config, run)
    names = ["background", *CLASSES] if task == "semantic" else CLASSES
    model = (
        semantic_model((size, size), len(names), seed)
        if task == "semantic"
        else calibrated_model(task, (size, size), seed=seed)
    )
    manifest = artifacts.build_manifest(config, names).model_copy(
        update={"threshold": threshold, "threshold_source": "test"}
    )
    artifacts.save_best(run.best, model.state_dict(), manifest, epoch=1)
    return project, run.path
