"""`task: semantic` end to end: instance labels turned into class regions, a short training run,
its files, the metrics it records, and resume of a semantic run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from training_fixtures import tiny_config, tiny_project

from dfseg.config import ConfigError
from dfseg.data.semantic import annotation_to_index_map
from dfseg.metrics.semantic import SemanticReport
from dfseg.nn.semantic_model import DFineSemantic
from dfseg.training.api import train_project
from dfseg.training.artifacts import results_columns
from dfseg.training.checkpoint_io import load_payload
from dfseg.training.project_data import load_project_data


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def semantic_project(tmp_path: Path) -> Path:
    return tiny_project(tmp_path, task="semantic")


def test_instance_labels_become_class_regions_with_background(semantic_project: Path) -> None:
    data = load_project_data(tiny_config(semantic_project))
    assert data.class_names == ["background", "circle", "square"]
    image = data.splits["train"][0]
    index_map = annotation_to_index_map(image)
    assert index_map.shape == (image.height, image.width)
    assert set(np.unique(index_map)) <= {0, 1, 2}
    assert (index_map == 0).mean() > 0.3  # the shapes sit on a background


def test_a_semantic_run_trains_validates_and_saves_best_by_miou(semantic_project: Path) -> None:
    report = train_project(tiny_config(semantic_project))
    assert report is not None and report.epochs_completed == 2
    assert report.decision_metric == "miou"
    assert isinstance(report.final, SemanticReport)
    assert report.threshold is None  # a class per pixel: no confidence threshold
    run = Path(report.run_dir)
    for name in ("results.csv", "best.pt", "last.pt", "per_class.csv", "confusion_matrix.png"):
        assert (run / name).is_file(), name
    rows = _rows(run / "results.csv")
    assert list(rows[0]) == results_columns("semantic")
    assert all(row["metrics/mIoU"] != "" for row in rows)
    assert float(rows[0]["train/sem_ce_loss"]) > 0
    mious = [float(row["metrics/mIoU"]) for row in rows]
    assert report.best_score == pytest.approx(max(mious), abs=1e-5)
    best = load_payload(run / "best.pt")
    manifest = best["manifest"]
    assert manifest["model"]["task"] == "semantic"
    assert manifest["class_names"] == ["background", "circle", "square"]
    assert manifest["metrics"]["metrics/mIoU"] == pytest.approx(report.best_score, abs=1e-5)
    assert "semantic" in manifest["threshold_source"]
    table = _rows(run / "per_class.csv")
    assert [row["class"] for row in table] == ["all", "background", "circle", "square"]
    assert report.final.confusion_array().sum() == sum(
        int((annotation_to_index_map(a) != 255).sum())
        for a in load_project_data(tiny_config(semantic_project)).splits["val"]
    )


def test_best_checkpoint_rebuilds_the_semantic_model(semantic_project: Path) -> None:
    from dfseg.nn import build_model
    from dfseg.structures.manifest import ArtifactManifest

    report = train_project(tiny_config(semantic_project, **{"train.epochs": 1}))
    assert report is not None
    best = load_payload(Path(report.run_dir) / "best.pt")
    manifest = ArtifactManifest.model_validate(best["manifest"])
    description = manifest.model
    model = build_model(
        description.size, description.num_classes, description.task, description.image_size
    )
    assert isinstance(model, DFineSemantic)
    model.load_state_dict(best["model"])  # strict: the keys are the semantic model's
    model.eval()
    with torch.no_grad():
        logits = model(torch.rand(1, 3, *description.image_size))["semantic_logits"]
    assert logits.shape == (1, 3, *description.image_size)


def test_detection_metrics_are_refused_for_the_semantic_task(semantic_project: Path) -> None:
    with pytest.raises(ConfigError, match="miou"):
        tiny_config(semantic_project, **{"train.decision_metric": "map50"})


def test_masks_format_needs_the_semantic_task(tmp_path: Path) -> None:
    path = tiny_project(tmp_path, task="detect")
    with pytest.raises(ConfigError, match="task: semantic"):
        tiny_config(path, **{"data.format": "masks"})


def test_the_train_report_serialises_with_the_semantic_metrics(semantic_project: Path) -> None:
    report = train_project(tiny_config(semantic_project, **{"train.epochs": 1}))
    assert report is not None
    data = json.loads(report.model_dump_json())
    assert data["final"]["task"] == "semantic" and "miou" in data["final"]


def test_val_reproduces_the_best_epochs_miou(semantic_project: Path) -> None:
    from dfseg.training.validate import validate_run

    config = tiny_config(semantic_project)
    report = train_project(config)
    assert report is not None and report.best_score is not None
    result = validate_run(config, Path(report.run_dir) / "best.pt")
    assert isinstance(result.report, SemanticReport)
    assert result.report.miou == pytest.approx(report.best_score, abs=1e-6)
    assert Path(result.files["confusion_matrix"]).is_file()
    assert (Path(result.out_dir) / "metrics.json").is_file()
