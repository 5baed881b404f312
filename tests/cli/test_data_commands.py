from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dfseg.cli.app import app

runner = CliRunner()


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    result = runner.invoke(app, ["demo", "--out", str(out), "--images", "40", "--until", "split"])
    assert result.exit_code == 0, result.output
    return out / "project.yaml"


def test_demo_generates_checks_and_splits(demo_project: Path) -> None:
    split_dir = demo_project.parent / "runs" / "shapes" / "split"
    train = (split_dir / "train.csv").read_text().splitlines()
    val = (split_dir / "val.csv").read_text().splitlines()
    assert len(train) - 1 + len(val) - 1 == 40
    assert json.loads((split_dir / "split.json").read_text())["seed"] == 42


def test_check_json_reports_counts(demo_project: Path) -> None:
    result = runner.invoke(app, ["check", str(demo_project), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["images"] == 40 and report["errors"] == 0
    assert [c["name"] for c in report["classes"]] == ["circle", "square", "triangle", "star"]


def test_check_fails_on_bad_labels_naming_file_and_line(tmp_path: Path) -> None:
    import cv2
    import numpy as np

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.jpg"), np.full((64, 64, 3), 128, np.uint8))
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.2 0.2\n")
    project = tmp_path / "p.yaml"
    project.write_text("data: {path: ., classes: [a, b]}\n")
    result = runner.invoke(app, ["check", str(project)])
    assert result.exit_code == 1
    assert "labels/a.txt:2" in result.output


def test_split_never_overwrites_and_leaves_the_dataset_alone(demo_project: Path) -> None:
    data = demo_project.parent / "data"
    before = tree_digest(data)
    again = runner.invoke(app, ["split", str(demo_project)])
    assert again.exit_code == 2
    assert "already exist" in again.output
    forced = runner.invoke(app, ["split", str(demo_project), "--overwrite", "data.split.seed=7"])
    assert forced.exit_code == 0, forced.output
    assert "Split (seed 7)" in forced.output
    assert tree_digest(data) == before


def test_convert_to_coco_round_trips_counts(demo_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "coco"
    result = runner.invoke(app, ["convert", str(demo_project), "--to", "coco", "-o", str(out)])
    assert result.exit_code == 0, result.output
    check = runner.invoke(
        app, ["check", str(demo_project), f"data.path={out}", "data.format=coco", "--json"]
    )
    original = runner.invoke(app, ["check", str(demo_project), "--json"])
    converted, source = json.loads(check.stdout), json.loads(original.stdout)
    assert converted["instances"] == source["instances"]
    assert converted["images"] == source["images"]


def test_config_errors_exit_2_without_traceback(demo_project: Path) -> None:
    result = runner.invoke(app, ["check", str(demo_project), "train.epochs=0", "data.fromat=voc"])
    assert result.exit_code == 2
    assert "train.epochs: must be > 0" in result.output
    assert "did you mean 'data.format'" in result.output
    assert "Traceback" not in result.output
