"""`compare_models` and `dfseg compare` on fake runs: a model compared with another on labels
made from its own predictions is right everywhere the other is not."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from dfseg.analysis.compare import compare_models
from dfseg.analysis.split_data import SplitImages, split_images_for
from dfseg.cli.app import app
from dfseg.config import load_project
from dfseg.metrics import ImageGroundTruth
from dfseg.runtime.predictor import load_predictor
from dfseg.structures import ImageAnnotation

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
from run_builder import CLASSES, write_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(project of A, run A, run B): two random N detectors with different weights."""
    project, run_a = write_run(tmp_path_factory.mktemp("compare-a"), task="detect", images=20)
    _, run_b = write_run(tmp_path_factory.mktemp("compare-b"), task="detect", images=20, seed=1)
    return project, run_a, run_b


def _labels_from(run: Path, split: SplitImages) -> SplitImages:
    """The split with A's own detections at its threshold as ground truth."""
    predictor = load_predictor(run, threads=1)
    truths, annotations = [], []
    for path in split.image_paths:
        found = predictor(cv2.imread(str(path)), max_det=100)  # what evaluation keeps
        height, width = found.image_size
        annotations.append(ImageAnnotation(path, width, height))
        truths.append(ImageGroundTruth(boxes_xyxy=found.boxes_xyxy, labels=found.labels,
                                       image_size=(height, width)))  # fmt: skip
    return SplitImages(split.name, annotations, truths, list(CLASSES))


def test_the_model_the_labels_come_from_is_right_where_the_other_is_wrong(
    runs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    project, run_a, run_b = runs
    split = _labels_from(run_a, split_images_for(load_project(project), "val"))
    report = compare_models(run_a / "best.pt", run_b / "best.pt", split, tmp_path, threads=1)
    assert report.a.box_map50_95 > 0.9 > report.b.box_map50_95
    assert sum(report.a.errors.values()) == 0 < sum(report.b.errors.values())
    assert report.only_b_right == [] and report.only_a_right
    assert all(entry.a_errors == 0 < entry.b_errors for entry in report.only_a_right)
    picture = cv2.imread(report.only_a_right[0].picture)  # type: ignore[arg-type]
    source = cv2.imread(report.only_a_right[0].image)
    assert picture.shape[1] == 2 * source.shape[1]  # A left, B right
    assert report.a.latency_ms > 0 and report.b.latency_ms > 0
    present = [c for c in report.classes if c.instances]
    assert present and all(c.a_map50_95 >= c.b_map50_95 for c in present)


def test_compare_command_writes_a_numbered_folder_and_json(runs: tuple[Path, Path, Path]) -> None:
    _, run_a, run_b = runs
    result = CliRunner().invoke(
        app, ["compare", str(run_a), str(run_b / "best.pt"), "--threads", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert Path(report["out_dir"]) == run_a / "compare" and report["split"] == "val"
    assert set(report["a"]["errors"]) == {
        "classification", "localization", "both", "duplicate", "background", "missed"
    }  # fmt: skip
    text = CliRunner().invoke(app, ["compare", str(run_a), str(run_b), "--threads", "1"])
    assert text.exit_code == 0 and "B - A" in text.output and "Per class" in text.output
    assert (run_a / "compare-2").is_dir()
