"""A crash never costs more than the epoch in progress: a failing validation, a mixed-label
segmentation dataset (polygons beside plain boxes), and the message the user gets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from training_fixtures import tiny_config, tiny_project

from dfseg.training import trainer as trainer_module
from dfseg.training.api import TrainingFailed, config_for_resume, train_project
from dfseg.training.checkpoint_io import load_payload


def boxes_only(label_file: Path) -> None:
    """Rewrite a YOLO-seg label file as plain `cls xc yc w h` rows (the polygons' bounds)."""
    rows = []
    for line in label_file.read_text().splitlines():
        values = line.split()
        points = np.array(values[1:], float).reshape(-1, 2)
        low, high = points.min(0), points.max(0)
        centre, size = (low + high) / 2, high - low
        rows.append(f"{values[0]} {centre[0]:.6f} {centre[1]:.6f} {size[0]:.6f} {size[1]:.6f}")
    label_file.write_text("\n".join(rows) + "\n")


def test_segmentation_on_mixed_labels_trains_and_validates(tmp_path: Path) -> None:
    project = tiny_project(tmp_path, task="segment", images=12)
    labels = sorted((tmp_path / "data" / "labels").glob("*.txt"))
    converted = [f for f in labels[::2] if f.read_text().strip()]
    for label_file in converted:
        boxes_only(label_file)
    report = train_project(tiny_config(project, **{"train.epochs": 1}))
    assert report is not None and report.final is not None
    final = report.final
    assert final.task == "segment" and final.overall.mask is not None
    assert final.mask_instances_left_out > 0  # said, not silent
    assert final.overall.instances > final.mask_instances_left_out  # boxes count them all
    run = Path(report.run_dir)
    assert load_payload(run / "last.pt")["epoch"] == 1 and (run / "best.pt").is_file()


def test_a_crash_in_validation_keeps_the_epoch_and_resumes_exactly(
    tiny_detect_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tiny_config(tiny_detect_project)
    straight = train_project(config)
    assert straight is not None
    real_evaluate = trainer_module.evaluate_annotations
    calls = {"count": 0}

    def evaluate_then_crash(*args: object, **kwargs: object) -> object:
        calls["count"] += 1
        if calls["count"] == 2:  # epoch 2's validation
            raise RuntimeError("simulated crash in validation")
        return real_evaluate(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(trainer_module, "evaluate_annotations", evaluate_then_crash)
    with pytest.raises(TrainingFailed) as stopped:
        train_project(config)
    monkeypatch.setattr(trainer_module, "evaluate_annotations", real_evaluate)
    run = Path(straight.run_dir).parent / "exp-2"
    message = str(stopped.value)
    assert "RuntimeError: simulated crash in validation" in message
    assert str(run / "train.log") in message and f"--resume {run}" in message
    assert "Epoch 2 of 2 is saved" in message
    log = (run / "train.log").read_text()
    assert "Traceback" in log and "simulated crash in validation" in log
    last = load_payload(run / "last.pt")
    assert last["epoch"] == 2 and last["pending_epoch"]["epoch"] == 2  # trained, not validated

    resumed = train_project(config_for_resume(run / "last.pt", []), resume_from=run / "last.pt")
    assert resumed is not None and resumed.epochs_completed == 2
    assert resumed.best_epoch == straight.best_epoch
    rows = (run / "results.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["1", "2"]
    a, b = load_payload(Path(straight.run_dir) / "last.pt"), load_payload(run / "last.pt")
    assert b["pending_epoch"] is None and a["best_score"] == b["best_score"]
    for key, value in a["ema"]["module"].items():
        assert torch.equal(value, b["ema"]["module"][key]), key


def test_an_error_before_the_first_epoch_ends_says_there_is_nothing_to_resume(
    tiny_detect_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object, **kwargs: object) -> object:
        raise ValueError("broken batch")

    monkeypatch.setattr(trainer_module, "train_one_epoch", crash)
    with pytest.raises(TrainingFailed, match="nothing to resume") as stopped:
        train_project(tiny_config(tiny_detect_project))
    assert stopped.value.exit_code == 1
    assert "ValueError: broken batch" in str(stopped.value)
