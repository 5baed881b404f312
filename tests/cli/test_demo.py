"""`dfseg demo` end to end on a small generated dataset: every stage writes what the next reads."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dfseg.cli.app import app

runner = CliRunner()


@pytest.mark.slow
def test_demo_runs_every_stage_and_benches_every_format(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--out", str(out), "--images", "24", "--epochs", "1"])
    assert result.exit_code == 0, result.output
    run = out / "runs" / "shapes" / "exp"
    assert (run / "best.pt").is_file() and (run / "last.pt").is_file()
    exports = sorted(p.name for p in (run / "export").iterdir())
    assert exports == ["onnx-fp32-b1", "openvino-fp32-b1", "openvino-int8"]
    for name in exports:
        manifest = json.loads((run / "export" / name / "manifest.json").read_text())
        assert manifest["model"]["task"] == "segment"
    with (run / "bench" / "bench.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {row["format"] for row in rows} == {"checkpoint", "onnx", "openvino"}
    assert {Path(row["artifact"]).parent.name for row in rows} >= set(exports)
    assert all(row["status"] == "ok" and float(row["total_ms_median"]) > 0 for row in rows)
    predicted = sorted(p.name for p in (run / "infer").glob("*.jpg"))
    assert predicted == [f"{i:05d}.jpg" for i in range(8)]  # the unseen images, annotated
    assert len((run / "infer" / "predictions.jsonl").read_text().splitlines()) == 8
    summary = result.output.rsplit("demo finished", 1)[1]  # ends with the bench table and paths
    assert all(name in summary for name in exports) and str(run / "infer") in summary
    for stage in ("dfseg train", "dfseg export", "dfseg quantize", "dfseg bench", "dfseg infer"):
        assert f"$ {stage} " in result.output  # each stage shows the command that runs it

    again = runner.invoke(app, ["demo", "--out", str(out), "--images", "24"])
    assert again.exit_code == 2 and "--force" in again.output  # never reruns over a demo silently
