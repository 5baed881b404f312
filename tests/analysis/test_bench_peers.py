"""benchmarks/bench_peers.py: the side-by-side latency harness (its bookkeeping, the runtime pins
its worker applies to every tool, and one real dfseg-only run)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load(name: str) -> ModuleType:
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bench = load("bench_peers")
worker = load("peer_worker")


def test_rounds_rotate_and_cover_every_row() -> None:
    rows = [bench.Row("dfseg", "n", fmt) for fmt in ("torch", "onnx", "ov-f32")]
    rounds = bench.rounds_order(rows, 4)
    assert [order[0].fmt for order in rounds] == ["torch", "onnx", "ov-f32", "torch"]
    assert all(sorted(order, key=rows.index) == rows for order in rounds)
    assert bench.rounds_order([], 3) == []


def test_parse_peer_checks_name_and_interpreter(tmp_path: Path) -> None:
    assert bench.parse_peer(f"dfine-seg={sys.executable}") == ("dfine-seg", Path(sys.executable))
    with pytest.raises(bench.BenchError, match="NAME one of"):
        bench.parse_peer(f"yolov5={sys.executable}")
    with pytest.raises(bench.BenchError, match="NAME=PYTHON"):
        bench.parse_peer("yolo26")
    with pytest.raises(bench.BenchError, match="no Python interpreter"):
        bench.parse_peer(f"yolo26={tmp_path / 'missing' / 'python'}")


def test_dfseg_decoder_variants_are_named_by_their_limits() -> None:
    assert worker.decoder_limits("dfseg") == (None, None)
    assert worker.decoder_limits(worker.check_tool("dfseg-q100-l2")) == (100, 2)
    assert worker.decoder_limits(worker.check_tool("dfseg-l3")) == (None, 3)
    assert worker.check_tool("yolo26") == "yolo26"
    for bad in ("dfseg-2", "dfseg-q", "yolov8"):
        with pytest.raises(argparse.ArgumentTypeError, match="unknown tool"):
            worker.check_tool(bad)


def test_last_json_skips_the_tools_own_output() -> None:
    noise = (
        'Loading model...\n{"not": "the result"}\n[torch.onnx] done\n'
        '{"ms": [1.5], "detections": 2}\n'
    )
    assert bench.last_json(noise) == {"ms": [1.5], "detections": 2}
    with pytest.raises(bench.BenchError, match="no result"):
        bench.last_json("Traceback (most recent call last):\n")


def cells(values: dict[tuple[str, str], list[float]]) -> dict:
    return {bench.Row(tool, "n", fmt): bench.Cell(rounds) for (tool, fmt), rounds in values.items()}


def test_goal_ratios_take_each_sides_fastest_path() -> None:
    measured = cells(
        {
            ("dfseg", "ov-int8"): [21.0, 20.0, 25.0],  # median 21
            ("dfseg", "ov-int8-bf16"): [18.0, 19.0, 30.0],  # median 19: dfseg's INT8
            ("dfseg", "ov-bf16"): [26.0],
            ("dfine-seg", "ov-int8"): [40.0],
            ("yolo26", "ov-f32"): [50.0],
            ("yolo26", "ov-bf16"): [36.0],
            ("yolo26", "ov-int8"): [38.0],
        }
    )
    measured[bench.Row("dfseg-q100-l2", "n", "ov-bf16")] = bench.Cell([17.0])
    lines = bench.goal_lines(measured, ["n"])
    assert lines[-1].startswith("n: dfseg-q100-l2 bf16 (ov-bf16) 17.0 ms / yolo26 ov-bf16")
    assert lines[-1].endswith("= 0.47x (goal <= 0.7x: met)")
    assert lines[0].startswith("n: dfseg INT8 (ov-int8-bf16) 19.0 ms / dfine-seg ov-int8 40.0")
    assert "= 0.47x (goal <= 0.5x: met)" in lines[0]
    assert "yolo26 ov-bf16 36.0 ms = 0.53x (goal <= 0.6x: met)" in lines[1]
    assert "dfseg bf16 (ov-bf16) 26.0 ms / yolo26 ov-bf16 36.0 ms = 0.72x" in lines[2]
    assert lines[2].endswith("not met)")
    # a side that was not measured gives no line, never a ratio against nothing
    assert bench.goal_lines(cells({("dfseg", "ov-int8"): [20.0]}), ["n"]) == []


def test_table_marks_failed_and_missing_cells() -> None:
    measured = cells({("dfseg", "torch"): [50.0, 40.0, 60.0], ("yolo26", "torch"): []})
    measured[bench.Row("dfseg", "n", "torch")].detections = 3
    measured[bench.Row("yolo26", "n", "torch")].error = "exit 1"
    lines = bench.table(measured, ["torch", "onnx"])
    dfseg_line = next(line for line in lines if line.startswith("dfseg"))
    assert "50.0 (40-60)" in dfseg_line and dfseg_line.rstrip().endswith("3")
    yolo_line = next(line for line in lines if line.startswith("yolo26"))
    assert "failed" in yolo_line and yolo_line.split()[-1] == "-"


@pytest.fixture
def restore_runtimes(monkeypatch: pytest.MonkeyPatch):
    """pin_runtimes patches process-wide objects: put them back afterwards."""
    import onnxruntime as ort
    import openvino as ov
    import torch

    monkeypatch.setattr(ov.Core, "compile_model", ov.Core.compile_model)
    monkeypatch.setattr(ort, "InferenceSession", ort.InferenceSession)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def tiny_openvino_model():
    import openvino as ov
    import openvino.opset13 as ops

    parameter = ops.parameter([1, 3, 8, 8], np.float32, name="input")
    return ov.Model([ops.relu(parameter)], [parameter], "tiny")


def test_pins_reach_openvino_however_a_tool_passes_its_config(restore_runtimes: None) -> None:
    import openvino as ov

    worker.pin_runtimes(1, "f32")
    core = ov.Core()
    # dfine-seg: positional (model, device, config); Ultralytics: keywords device_name=, config=
    positional = core.compile_model(tiny_openvino_model(), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
    keywords = core.compile_model(
        tiny_openvino_model(), device_name="CPU", config={"PERFORMANCE_HINT": "THROUGHPUT"}
    )
    bare = core.compile_model(tiny_openvino_model(), "CPU")
    for compiled, hint in ((positional, "LATENCY"), (keywords, "THROUGHPUT"), (bare, None)):
        assert compiled.get_property("INFERENCE_NUM_THREADS") == 1
        assert compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32
        if hint is not None:  # the tool's own settings are kept
            assert str(compiled.get_property("PERFORMANCE_HINT")) == hint


def test_pins_reach_onnxruntime(restore_runtimes: None, tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )  # fmt: skip
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    worker.pin_runtimes(1, None)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_session_options().intra_op_num_threads == 1
    assert session.run(None, {"x": -np.ones((1, 4), np.float32)})[0].max() == 0


def test_a_missing_peer_interpreter_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_peers.py"), "--peer", "yolo26=/no/such/python",
         "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "no Python interpreter at /no/such/python" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_dfseg_rows_alone_are_timed_in_fresh_processes(tmp_path: Path) -> None:
    """Without peers the harness times dfseg's rows: one median per round, the detections."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_peers.py"), "--formats", "torch",
         "--image-size", "320", "--passes", "2", "--runs", "2", "--warmup", "0",
         "--threads", "1", "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((tmp_path / "bench_peers.json").read_text())
    assert [(r["tool"], r["size"], r["fmt"]) for r in summary["rows"]] == [("dfseg", "n", "torch")]
    row = summary["rows"][0]
    assert len(row["rounds"]) == 2 and all(ms > 0 for ms in row["rounds"])
    assert isinstance(row["detections"], int) and row["error"] is None
    assert summary["threads"] == 1 and summary["versions"]["dfseg"]
    assert "CPU:" in done.stdout
    assert any(line.split()[:2] == ["dfseg", "n"] for line in done.stdout.splitlines())
