"""`dfseg errors` on a tiny trained run (it makes plenty of mistakes)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))
from run_fixtures import trained_tiny_run

from dfseg.analysis.errors.rows import ERROR_COLUMNS
from dfseg.analysis.errors.tide import ERROR_TYPES
from dfseg.cli.app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return trained_tiny_run(tmp_path_factory)


@pytest.mark.slow
def test_errors_writes_gallery_csv_and_a_new_folder_each_time(tiny_run: tuple[Path, Path]) -> None:
    project, run = tiny_run
    result = runner.invoke(app, ["errors", str(run), "--json", "--gallery-limit", "3"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    out = Path(report["out_dir"])
    assert out == run / "errors"
    (group,) = report["groups"]  # a detection run: boxes only
    assert [row["error_type"] for row in group["rows"]] == list(ERROR_TYPES)
    assert sum(row["count"] for row in group["rows"]) > 0
    pictures = list(out.glob("gallery/*/*.jpg"))
    assert pictures and {p.parent.name for p in pictures} <= set(ERROR_TYPES)
    assert len({p.name for p in pictures}) <= 3  # the limit counts images, not pictures
    with (out / "errors.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == ERROR_COLUMNS
    assert len(rows) == sum(r["count"] for r in group["rows"]) + sum(
        1 for r in rows if r["side"] == "false_negative" and r["error_type"] != "missed"
    )
    assert (out / "error_summary.png").is_file()
    worst = report["worst_images"]
    assert worst == sorted(worst, key=lambda w: -w["errors"])
    again = runner.invoke(app, ["errors", str(project), "--dap", "ap50_95", "--gallery-limit", "0"])
    assert again.exit_code == 0, again.output
    assert (run / "errors-2" / "errors.csv").is_file()
    assert "dAP50-95" in again.stdout and "Images with the most errors" in again.stdout


def test_errors_explains_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    result = runner.invoke(app, ["errors", str(tmp_path)])
    assert result.exit_code == 2
    assert "no trained run" in result.output
