"""`train.distill` end to end: an S teacher trained for an epoch teaches an N student of the
semantic and the instance-segmentation task; the terms appear in the losses and results.csv,
the projections go to last.pt but never to best.pt, and bad teachers are refused clearly."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from training_fixtures import tiny_config, tiny_project

from dfseg.nn.trained import load_trained_model
from dfseg.training.api import train_project
from dfseg.training.checkpoint_io import load_payload
from dfseg.training.distill import DistillError

SMALL = {"data.image_size": "[128,128]", "model.num_queries": 40, "train.epochs": 1}


def _teacher(root: Path, task: str) -> Path:
    project = tiny_project(root / "teacher", task=task, images=8)
    report = train_project(tiny_config(project, **SMALL, **{"model.size": "s"}))
    assert report is not None
    return Path(report.run_dir)


def _student(root: Path, task: str, teacher: Path, **extra: object) -> Path:
    project = tiny_project(root / "student", task=task, images=8)
    overrides = {**SMALL, "train.distill.teacher": str(teacher), **extra}
    report = train_project(tiny_config(project, **overrides))
    assert report is not None
    return Path(report.run_dir)


def _header(run: Path) -> list[str]:
    with (run / "results.csv").open() as handle:
        return next(csv.reader(handle))


@pytest.mark.parametrize("task", ["semantic", "segment"])
def test_an_s_teacher_teaches_an_n_student(tmp_path: Path, task: str) -> None:
    teacher = _teacher(tmp_path, task)
    run = _student(tmp_path, task, teacher)
    header = _header(run)
    expected = ["kd_logit", "kd_feat"] + (["kd_box", "kd_mask"] if task == "segment" else [])
    for family in expected:
        assert f"train/{family}_loss" in header, family
    with (run / "results.csv").open() as handle:
        row = next(csv.DictReader(handle))
    for family in expected:
        assert float(row[f"train/{family}_loss"]) > 0, family
    # the feature projections (N: 128 channels -> S: 256) train and are kept for --resume ...
    last = load_payload(run / "last.pt")
    projections = last["distill"]
    assert projections and all(
        v.shape[:2] == (256, 128) for k, v in projections.items() if k.endswith("weight")
    )
    assert any(group.get("name") == "distill" for group in last["optimizer"]["param_groups"])
    # ... but the deployed model is the student alone
    model, manifest = load_trained_model(run / "best.pt")
    assert manifest.model.size == "n"
    assert not any("projector" in key or "teacher" in key for key in model.state_dict())


def test_distillation_changes_the_student(tmp_path: Path) -> None:
    """Same seed and data with and without the teacher: the weights differ (the terms have
    gradients), and they are reproducible without it."""
    teacher = _teacher(tmp_path, "semantic")
    taught = _student(tmp_path / "a", "semantic", teacher)
    plain_project = tiny_project(tmp_path / "b", task="semantic", images=8)
    plain = train_project(tiny_config(plain_project, **SMALL))
    assert plain is not None
    taught_weights = load_payload(taught / "last.pt")["model"]
    plain_weights = load_payload(Path(plain.run_dir) / "last.pt")["model"]
    key = "semantic_head.classifier.weight"
    assert not torch.equal(taught_weights[key], plain_weights[key])
    assert "train/kd_logit_loss" not in _header(Path(plain.run_dir))


def test_a_teacher_of_other_classes_or_task_is_refused(tmp_path: Path) -> None:
    teacher = _teacher(tmp_path, "semantic")
    with pytest.raises(DistillError, match="semantic model; the student is segment"):
        _student(tmp_path / "task", "segment", teacher)
    with pytest.raises(DistillError, match="not found"):
        _student(tmp_path / "missing", "semantic", tmp_path / "nowhere")
    project = tiny_project(tmp_path / "classes", task="semantic", images=8)
    text = project.read_text().replace("[circle, square]", "[circle, box]")
    project.write_text(text)
    config = tiny_config(project, **SMALL, **{"train.distill.teacher": str(teacher)})
    with pytest.raises(DistillError, match="same classes"):
        train_project(config)
