from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dfseg.cli.app import app
from dfseg.data.synthetic import generate_synthetic_dataset

runner = CliRunner()
FAST = ["train.epochs=1", "train.batch_size=4", "train.workers=0", "augment.debug_images=0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-train")
    generate_synthetic_dataset(
        root / "data", num_images=10, image_size=(256, 256), classes=("circle", "square"), seed=1
    )
    project = root / "project.yaml"
    init = runner.invoke(app, ["init", str(root), "--size", "n", "--classes", "circle,square"])
    assert init.exit_code == 0, init.output
    text = project.read_text().replace("[640, 640]", "[256, 256]")
    project.write_text(text)
    result = runner.invoke(app, ["train", str(project), *FAST])
    assert result.exit_code == 0, result.output
    assert "Results saved to" in result.output
    return project


def test_train_prints_the_validation_table(trained: Path) -> None:
    run = trained.parent / "runs" / trained.parent.name / "exp"
    assert (run / "best.pt").is_file()


def test_val_uses_the_tuned_threshold_by_default(trained: Path) -> None:
    result = runner.invoke(app, ["val", str(trained), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["report"]["threshold_source"] == "given"
    forced = json.loads(runner.invoke(app, ["val", str(trained), "--json", "--conf", "0.9"]).stdout)
    assert forced["report"]["threshold"] == 0.9
    assert Path(forced["out_dir"]).name == "val-2"


def test_resume_of_a_finished_run_says_how_to_extend(trained: Path) -> None:
    result = runner.invoke(app, ["train", str(trained), "--resume"])
    assert result.exit_code == 2
    assert "train.epochs=N" in result.output
    extended = runner.invoke(app, ["train", str(trained), "--resume", "train.epochs=2"])
    assert extended.exit_code == 0, extended.output
    assert "epoch 2/2" in extended.output


def test_a_time_budget_ends_the_run_and_says_how_many_epochs_fitted(trained: Path) -> None:
    result = runner.invoke(
        app, ["train", str(trained), *FAST, "train.epochs=4", "train.time_budget=0.001"]
    )
    assert result.exit_code == 0, result.output
    assert "time budget 0.001 min: 1 of 4 epochs fitted" in result.output
    assert "epoch 1/1" in result.output  # the plan, not the 4 asked for


def test_info_counts_parameters() -> None:
    result = runner.invoke(app, ["info", "--size", "n", "--image-size", "256", "256", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["parameters"] == 3_782_693
    assert report["output_shapes"]["pred_logits"] == [1, 300, 80]
    assert report["parameters_by_part"]["mask_head"] == 0
