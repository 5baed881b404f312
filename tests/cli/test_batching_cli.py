"""`dfseg batching` with the torch backend on a tiny trained run."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))
from run_fixtures import trained_tiny_run

from dfseg.analysis.batching import BATCHING_COLUMNS
from dfseg.cli.app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return trained_tiny_run(tmp_path_factory)


@pytest.mark.slow
def test_batched_torch_outputs_equal_batch_one(tiny_run: tuple[Path, Path]) -> None:
    _, run = tiny_run
    args = ["batching", str(run), "--batch-sizes", "2,1", "--repeats", "2", "--warmup", "0"]
    result = runner.invoke(app, [*args, "--images", "3", "--threads", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [row["batch_size"] for row in report["rows"]] == [1, 2]
    for row in report["rows"]:
        assert row["status"] == "ok" and row["matches_batch1"] is True
        assert row["images_per_second"] > 0
        assert row["ms_per_image"] == pytest.approx(row["batch_ms_median"] / row["batch_size"])
    assert report["recommended_batch"] in (1, 2)
    out = Path(report["out_dir"])
    with (out / "batching.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == BATCHING_COLUMNS and len(rows) == 2
    assert (out / "throughput.png").is_file()


def test_bad_batch_sizes_are_rejected(tmp_path: Path) -> None:
    result = runner.invoke(app, ["batching", str(tmp_path), "--batch-sizes", "1,x"])
    assert result.exit_code == 2
    assert "comma-separated integers" in result.output
