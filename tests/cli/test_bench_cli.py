"""`dfseg bench`: every artifact of a run, against torch FP32; `--max-drop` fails CI on a drop."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))
from run_fixtures import copy_run, pseudo_labelled_dataset, trained_tiny_run

from dfseg.analysis.bench.report import BENCH_COLUMNS
from dfseg.cli.app import app

runner = CliRunner()
QUICK = ["bench.runs=2", "bench.warmup=1", "bench.threads=1"]


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(run copy with an ONNX export and a deliberately broken copy of it, pseudo dataset)."""
    _, run = trained_tiny_run(tmp_path_factory)
    root = tmp_path_factory.mktemp("bench")
    copy = copy_run(run, root / "runs" / "tiny" / "exp")
    (root / "runs" / "tiny" / "split").symlink_to(run.parent / "split")
    data = pseudo_labelled_dataset(run, run.parents[2] / "data", root / "pseudo")
    result = runner.invoke(app, ["export", str(copy), "--fmt", "onnx", "--threads", "1"])
    assert result.exit_code == 0, result.output
    good = copy / "export" / "onnx-fp32-b1"
    broken = copy / "export" / "onnx-broken"
    broken.mkdir()
    for file in good.iterdir():
        (broken / file.name).write_bytes(file.read_bytes())
    halve_boxes(broken / "model.onnx")
    return copy, data


def halve_boxes(path: Path) -> None:
    """Simulate an export bug: the graph's boxes come out at half scale."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    for node in graph.node:
        node.output[:] = ["boxes_full" if name == "boxes" else name for name in node.output]
    half = numpy_helper.from_array(np.array(0.5, np.float32), "half")
    graph.initializer.append(half)
    graph.node.append(helper.make_node("Mul", ["boxes_full", "half"], ["boxes"]))
    onnx.save(model, str(path))


@pytest.mark.slow
@pytest.mark.export
def test_bench_rows_csv_and_max_drop_exit_code(exported_run: tuple[Path, Path]) -> None:
    run, data = exported_run
    args = ["bench", str(run), f"data.path={data}", *QUICK, "--json"]
    failing = runner.invoke(app, [*args, "--max-drop", "0.05"])
    assert failing.exit_code == 1, failing.output
    report = json.loads(failing.stdout)
    rows = {row["name"]: row for row in report["rows"]}
    assert list(rows) == ["torch cpu", "onnx-broken cpu", "onnx-fp32-b1 cpu"]
    torch_row, good, broken = rows["torch cpu"], rows["onnx-fp32-b1 cpu"], rows["onnx-broken cpu"]
    assert torch_row["status"] == "ok" and torch_row["box"]["map50"] > 0.8  # labels = its output
    assert good["status"] == "ok" and abs(good["drop"]) < 0.01
    assert broken["status"] == "validation_failed" and broken["drop"] > 0.05
    assert "dropped" in broken["reason"]
    for row in rows.values():
        latency = row["latency"]["stages"]
        assert latency["total"]["median_ms"] >= latency["inference"]["median_ms"] > 0
        assert row["size_mb"] > 1
    out = Path(report["out_dir"])
    with (out / "bench.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert tuple(table[0]) == BENCH_COLUMNS and len(table) == 3
    assert (out / "latency_accuracy.png").is_file()
    assert len(list((out / "predictions").glob("*.png"))) == 3

    (run / "export" / "onnx-broken" / "manifest.json").unlink()  # now an unusable folder
    passing = runner.invoke(app, [*args[:-1], "--max-drop", "0.05"])
    assert passing.exit_code == 0, passing.output
    assert "onnx-broken" in passing.stdout and "manifest" in passing.stdout  # failed, with reason
    assert (run / "bench-2" / "bench.csv").is_file()

    parity_file = run / "export" / "onnx-fp32-b1" / "parity.json"
    parity = json.loads(parity_file.read_text())  # written by `dfseg export`
    assert parity["passed"] is True and parity["matched"] == parity["compared"] > 0
    parity.update(passed=False, failures=["max box difference 3.1 px > 0.5 px"])
    parity_file.write_text(json.dumps(parity))
    flagged = runner.invoke(app, args)
    assert flagged.exit_code == 1, flagged.output
    row = {r["name"]: r for r in json.loads(flagged.stdout)["rows"]}["onnx-fp32-b1 cpu"]
    assert row["status"] == "validation_failed" and "3.1 px" in row["reason"]
    assert "parity" in row["reason"] and row["box"] is not None and abs(row["drop"]) < 0.01
