from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from training_fixtures import tiny_config, tiny_project

from dfseg.config import ConfigError
from dfseg.config.template import render_project_template
from dfseg.data.synthetic import generate_synthetic_dataset
from dfseg.nn.dfine_decoder import QUERY_GROUP_PREFIX
from dfseg.nn.trained import load_trained_model
from dfseg.structures.manifest import ArtifactManifest
from dfseg.training.api import (
    ResumeError,
    TrainingFailed,
    config_for_resume,
    resolve_resume,
    train_project,
)
from dfseg.training.artifacts import results_columns
from dfseg.training.checkpoint_io import load_payload
from dfseg.training.hooks import TrainerHook
from dfseg.training.reports import EpochResult
from dfseg.training.trainer import Trainer


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_a_run_writes_everything_and_never_reuses_its_folder(tiny_detect_project: Path) -> None:
    config = tiny_config(tiny_detect_project)
    report = train_project(config)
    assert report is not None
    run = Path(report.run_dir)
    assert run.name == "exp" and report.epochs_completed == 2
    for name in (
        "project.yaml",
        "train.log",
        "results.csv",
        "last.pt",
        "best.pt",
        "PR_curve.png",
        "F1_curve.png",
        "confusion_matrix.png",
        "labels.png",
        "val_predictions.png",
    ):
        assert (run / name).is_file(), name
    assert len(list((run / "debug").glob("*.jpg"))) == 2
    rows = read_rows(run / "results.csv")
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert list(rows[0]) == results_columns("detect")
    last = load_payload(run / "last.pt")  # weights_only loading
    assert last["epoch"] == 2 and last["manifest"]["class_names"] == ["circle", "square"]
    assert "class_names" not in last and "model_spec" not in last  # stored once, in the manifest
    assert {"model", "ema", "optimizer", "scaler", "optimizer_steps", "config"} <= set(last)
    best = load_payload(run / "best.pt")
    manifest = ArtifactManifest.model_validate(best["manifest"])
    assert manifest.model.size == "n" and manifest.class_names == ["circle", "square"]
    assert manifest.threshold == pytest.approx(report.threshold)
    assert 0.0 <= manifest.threshold <= 1.0
    second = train_project(tiny_config(tiny_detect_project, **{"train.epochs": 1}))
    assert second is not None and Path(second.run_dir).name == "exp-2"


class SimulatedCrash(Exception):
    pass


class CrashAfterFirstEpoch(TrainerHook):
    def on_epoch_end(self, trainer: Trainer, result: EpochResult) -> None:
        if result.epoch == 1:
            raise SimulatedCrash  # last.pt of epoch 1 is written, epoch 2 never starts


def test_resume_continues_exactly(tiny_detect_project: Path) -> None:
    config = tiny_config(tiny_detect_project, **{"train.epochs": 2})
    straight = train_project(config)
    assert straight is not None
    with pytest.raises(TrainingFailed) as stopped:
        train_project(config, hooks=[CrashAfterFirstEpoch()])
    assert isinstance(stopped.value.__cause__, SimulatedCrash)
    crashed_run = Path(straight.run_dir).parent / "exp-2"
    assert f"--resume {crashed_run}" in str(stopped.value)
    assert "SimulatedCrash" in (crashed_run / "train.log").read_text()  # with its traceback
    last = resolve_resume(crashed_run.parent)
    assert last == crashed_run / "last.pt"
    resumed = train_project(config_for_resume(last, []), resume_from=last)
    assert resumed is not None and resumed.resumed_from_epoch == 1
    assert resumed.run_dir == str(crashed_run)
    a = load_payload(Path(straight.run_dir) / "last.pt")
    b = load_payload(Path(resumed.run_dir) / "last.pt")
    assert a["optimizer_steps"] == b["optimizer_steps"]
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for key, value in a["ema"]["module"].items():
        assert torch.equal(value, b["ema"]["module"][key]), key
    rows = read_rows(Path(resumed.run_dir) / "results.csv")
    assert [r["epoch"] for r in rows] == ["1", "2"]
    with pytest.raises(ResumeError, match="already finished 2 of 2"):
        config_for_resume(last, [])
    extended = config_for_resume(last, ["train.epochs=3"])
    assert extended.train.epochs == 3


def test_segment_run_reports_mask_metrics(tmp_path: Path) -> None:
    config = tiny_config(tiny_project(tmp_path, task="segment"), **{"train.epochs": 1})
    report = train_project(config)
    assert report is not None and report.final is not None
    assert report.final.task == "segment" and report.final.overall.mask is not None
    rows = read_rows(Path(report.run_dir) / "results.csv")
    assert list(rows[0]) == results_columns("segment")
    assert rows[0]["train/mask_dice_loss"] != ""


def test_tensorboard_receives_every_epoch(tiny_detect_project: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = tiny_config(tiny_detect_project, **{"train.tensorboard": "true"})
    report = train_project(config)
    assert report is not None
    events = EventAccumulator(str(Path(report.run_dir) / "tensorboard"))
    events.Reload()
    steps = [event.step for event in events.Scalars("train/loss")]
    assert steps == [1, 2]
    assert "metrics/mAP50-95(B)" in events.Tags()["scalars"]


def test_enabled_tracker_that_is_not_installed_is_a_clear_error(
    tiny_detect_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from dfseg.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "mlflow", None)  # importing it now raises ImportError
    with pytest.raises(MissingDependencyError, match="dfseg\\[dev\\]"):
        train_project(tiny_config(tiny_detect_project, **{"train.mlflow": "true"}))


def test_best_pt_says_when_its_threshold_is_not_a_tuned_one() -> None:
    from types import SimpleNamespace

    from dfseg.training.hooks import threshold_description

    result = EpochResult(epoch=3, epochs=5, losses={}, seconds=1.0, images_per_second=1.0, lr=0.1)
    report = SimpleNamespace(threshold_source="fallback")
    fresh = SimpleNamespace(state=SimpleNamespace(threshold_epoch=None))
    text = threshold_description(fresh, report, "val", result)  # type: ignore[arg-type]
    assert text == "the default: no prediction matched an object on val at epoch 3"
    later = SimpleNamespace(state=SimpleNamespace(threshold_epoch=2))
    text = threshold_description(later, report, "val", result)  # type: ignore[arg-type]
    assert text.startswith("kept from epoch 2:")
    tuned = SimpleNamespace(threshold_source="segm")
    text = threshold_description(later, tuned, "val", result)  # type: ignore[arg-type]
    assert text == "best F1 (mask) on val, epoch 3"


def test_training_on_tiles_of_larger_images(tmp_path: Path) -> None:
    """`data.tile`: 512 px images train as four 256 px tiles each, at the 256 px input."""
    generate_synthetic_dataset(
        tmp_path / "data", num_images=6, image_size=(512, 512), classes=("circle", "square"), seed=3
    )
    path = tmp_path / "project.yaml"
    path.write_text(
        render_project_template(
            name="tiles", task="detect", size="n", classes=["circle", "square"],
            image_size=(256, 256),
        )
    )  # fmt: skip
    config = tiny_config(path, **{"train.epochs": 1, "data.tile": 256, "data.split.val": 0.34})
    report = train_project(config)
    assert report is not None and report.epochs_completed == 1
    log = (Path(report.run_dir) / "train.log").read_text()
    assert "train 4, val 2 (train as 16 tiles of 256 px per epoch" in log
    assert (Path(report.run_dir) / "best.pt").is_file()
    with pytest.raises(ConfigError, match=r"data\.tile"):
        tiny_config(path, **{"data.tile": 8})


def test_query_groups_train_and_best_pt_is_a_plain_model(tiny_detect_project: Path) -> None:
    """Group DETR's extra heads are in last.pt (resume) but never in best.pt, which loads
    strictly into the model every backend builds."""
    report = train_project(tiny_config(tiny_detect_project, **{"train.query_groups": 3}))
    assert report is not None and report.final is not None
    run = Path(report.run_dir)
    last = load_payload(run / "last.pt")
    grouped = [k for k in last["model"] if k.startswith(QUERY_GROUP_PREFIX)]
    assert grouped and any(".1.enc_score_head." in k for k in grouped)  # two extra groups
    assert any(k.startswith(QUERY_GROUP_PREFIX) for k in last["ema"]["module"])
    best = load_payload(run / "best.pt")
    assert not any(k.startswith(QUERY_GROUP_PREFIX) for k in best["model"])
    model, _ = load_trained_model(run / "best.pt")  # what val, export and infer load
    assert model.decoder.query_groups == 1
    rows = read_rows(run / "results.csv")
    assert all(float(r["train/loss"]) > 0 for r in rows)
