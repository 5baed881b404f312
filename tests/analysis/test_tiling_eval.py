"""`compare_tiling` (with the blob detector of tests/runtime/blob_detector.py, whose answers are
known) and `dfseg val --tile` / `bench --tile` on a trained tiny run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import BaseModel
from run_fixtures import trained_tiny_run
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))

from blob_detector import blob_predictor, bright_colour

from dfseg.analysis import tiling_eval
from dfseg.analysis.predict import predict_for_evaluation
from dfseg.analysis.split_data import SplitImages
from dfseg.analysis.tiling_eval import compare_tiling
from dfseg.cli.app import app
from dfseg.metrics import ImageGroundTruth, build_eval_report
from dfseg.runtime.tiling import TileSettings
from dfseg.structures.annotations import ImageAnnotation

runner = CliRunner()


def same(a: BaseModel | None, b: BaseModel | None) -> bool:
    """Equal metrics, NaN (no matched object yet) equal to NaN."""
    return (a is None and b is None) or (
        a is not None and b is not None and a.model_dump_json() == b.model_dump_json()
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return trained_tiny_run(tmp_path_factory, task="segment")


def _blob_split(folder: Path, images: int = 3, size: int = 1024) -> SplitImages:
    """`images` generated images of many 13 px discs, with box ground truth (class "blob")."""
    rng = np.random.default_rng(1)
    annotations, truths = [], []
    for index in range(images):
        image = np.full((size, size, 3), 90, np.uint8)
        boxes: list[list[float]] = []
        while len(boxes) < 20:
            x, y = (int(v) for v in rng.integers(20, size - 20, 2))
            if any(abs(x - b[0] - 6) < 30 and abs(y - b[1] - 6) < 30 for b in boxes):
                continue
            cv2.circle(image, (x, y), 6, bright_colour(len(boxes) * 9 % 180), -1)
            boxes.append([x - 6, y - 6, x + 7, y + 7])
        path = folder / f"blobs{index}.png"
        cv2.imwrite(str(path), image)
        labels = np.zeros(len(boxes), np.int64)
        box_array = np.array(boxes, np.float32)
        annotations.append(ImageAnnotation(path, size, size, labels, box_array))
        truths.append(ImageGroundTruth(box_array, labels, image_size=(size, size)))
    return SplitImages("val", annotations, truths, ["blob"])


def test_whole_row_is_the_plain_evaluation_and_tiling_finds_the_small_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def load(artifact: Path, threads: int | None = None, tiling: TileSettings | None = None):
        predictor = blob_predictor(256)
        predictor.tiling = tiling
        return predictor

    monkeypatch.setattr(tiling_eval, "load_predictor", load)
    split = _blob_split(tmp_path)
    report = compare_tiling(tmp_path / "blob.pt", split, TileSettings(size=256), 0.5)
    whole, tiled = report.rows
    assert whole.name == "whole images" and tiled.name == "tiles 256 px, overlap 0.2, fuse"
    plain = predict_for_evaluation(blob_predictor(256), split.image_paths)
    expected = build_eval_report(split.ground_truths, plain, split.class_names, threshold=0.5)
    assert same(whole.box, expected.overall.box)
    assert whole.box.recall <= 0.1  # 13 px discs shrink to 3 input pixels at 1024 -> 256
    assert tiled.box.recall == 1.0 and tiled.box.precision == 1.0 and tiled.box.map50 > 0.95
    assert report.images == 3 and tiled.ms_per_image > 0
    one_tile = compare_tiling(tmp_path / "blob.pt", split, TileSettings(size=1024), 0.5)
    assert same(one_tile.rows[1].box, whole.box)  # one tile covering the image: the whole image


def test_val_and_bench_take_tile_options(tiny: tuple[Path, Path]) -> None:
    project, run = tiny
    result = runner.invoke(app, ["val", str(project), "--tile", "128", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert [row["name"] for row in rows] == ["whole images", "tiles 128 px, overlap 0.2, fuse"]
    text = runner.invoke(app, ["val", str(project), "--tile", "128", "--tile-overlap", "0.3"])
    assert text.exit_code == 0 and "tiles 128 px, overlap 0.3" in text.output
    args = ["bench", str(run), "--tile", "128", "--threads", "1", "--json",
            "bench.runs=2", "bench.warmup=0"]  # fmt: skip
    bench = runner.invoke(app, args)
    assert bench.exit_code == 0, bench.output
    report = json.loads(bench.stdout)
    assert report["tiling"] == "tiles 128 px, overlap 0.2, fuse"
    torch_row = report["rows"][0]
    assert torch_row["status"] == "ok" and torch_row["box"] == rows[1]["box"]
