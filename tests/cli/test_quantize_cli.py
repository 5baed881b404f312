"""`dfseg quantize` on a tiny trained run: INT8 within the asked drop, validated against FP32."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))
from run_fixtures import copy_run, trained_tiny_run

from dfseg.analysis.bench.targets import find_bench_targets
from dfseg.cli.app import app
from dfseg.runtime.signal_stack import current_signal_stack, owned_signal_stack
from dfseg.structures.manifest import ArtifactManifest
from dfseg.structures.run_layout import RunFolder

runner = CliRunner()


@pytest.mark.slow
@pytest.mark.export
def test_accuracy_aware_int8_stays_within_the_drop_and_shows_up_in_bench(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    _, trained = trained_tiny_run(tmp_path_factory)
    root = tmp_path_factory.mktemp("quantize")
    run = copy_run(trained, root / "runs" / "tiny" / "exp")
    (root / "runs" / "tiny" / "split").symlink_to(trained.parent / "split")
    args = ["quantize", str(run), "--mode", "accuracy", "--max-drop", "0.02", "--metric", "map50"]
    result = runner.invoke(app, [*args, "--calibration-images", "4", "--threads", "1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # NNCF's own output stays off stdout
    assert report["mode"] == "accuracy" and report["passed"] is True
    assert report["scope"] == "backbone"  # the default
    assert report["calibration_images"] == 4 and report["calibration_requested"] == 4
    assert report["drop"] == pytest.approx(report["fp32"]["metric"] - report["int8"]["metric"])
    assert report["drop"] <= 0.02
    assert report["fp32"]["weights_precision"] == "fp32"
    assert report["int8"]["weights_precision"] == "int8"
    assert report["int8"]["latency_ms"] > 0 and report["fp32"]["latency_ms"] > 0
    folder = run / "export" / "openvino-int8"
    manifest = ArtifactManifest.read(folder)
    assert manifest.precision == "int8" and manifest.format == "openvino"
    assert manifest.runtime_hints == {"INFERENCE_PRECISION_HINT": "fp32"}
    assert report["fp32"]["inference_precision"] == "fp32"  # the reference runs in f32
    assert report["int8"]["inference_precision"] == "fp32"  # as NNCF's accuracy control ran it
    assert manifest.metrics["map50_int8"] == pytest.approx(report["int8"]["metric"])
    assert (run / "export" / "openvino-fp32-b1" / "model.xml").is_file()  # exported on the way
    names = [t.name for t in find_bench_targets(RunFolder(run))]
    assert "openvino-int8:fp32 cpu" in names and "openvino-int8:default cpu" in names

    assert current_signal_stack()[0] == owned_signal_stack()  # not one NNCF's Cores unmapped

    again = runner.invoke(app, ["quantize", str(run), "--mode", "basic"])
    assert again.exit_code == 2 and "already exists" in again.output
