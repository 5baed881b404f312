"""`profile_model` and `dfseg profile` on a fake run: torch module hooks, onnxruntime's profiler
and OpenVINO's performance counters each account for most of the inference time."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dfseg.analysis.profile import component_of, profile_model
from dfseg.cli.app import app
from dfseg.runtime.errors import BackendError
from dfseg.runtime.predictor import load_predictor

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
from run_builder import write_run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("profile"), task="segment")[1]


def test_torch_modules_cover_the_inference_and_name_the_parts(run: Path, tmp_path: Path) -> None:
    report = profile_model(run / "best.pt", threads=1, runs=3, top=5, out_dir=tmp_path)
    inference = report.stages_ms["inference"]
    assert 0.6 * inference < report.layers_ms <= 1.05 * inference
    assert len(report.top_layers) == 5
    assert report.top_layers[0].ms >= report.top_layers[-1].ms
    kinds = {row.kind for row in report.by_kind}
    assert {"DecoderLayer", "HGStage"} <= kinds
    parts = {row.kind for row in report.by_component}
    assert {"backbone", "encoder", "decoder", "mask_head"} <= parts
    assert abs(sum(row.share for row in report.by_kind) - report.layers_ms / inference) < 0.01
    assert Path(report.plot).stat().st_size > 10_000  # type: ignore[arg-type]


@pytest.mark.export
@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_exported_graphs_report_their_nodes(run: Path, fmt: str) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("openvino")
    from dfseg.export.api import export_model
    from dfseg.export.options import ExportOptions
    from dfseg.export.source import find_export_source

    options = ExportOptions(formats=[fmt], parity_images=1)  # type: ignore[list-item]
    artifact = Path(
        export_model(find_export_source(run / "best.pt"), options).artifacts[0].model_file
    )
    report = profile_model(artifact, threads=1, runs=3, top=10)
    assert report.backend == ("onnxruntime" if fmt == "onnx" else "openvino")
    assert report.layers_ms > 0.6 * report.stages_ms["inference"]
    kinds = {row.kind for row in report.by_kind}
    assert ("Conv" if fmt == "onnx" else "Convolution") in kinds
    assert "GridSample" in kinds  # deformable attention's sampling
    if fmt == "openvino":
        assert all(row.precision for row in report.top_layers)  # the kernel it ran in
    assert "decoder" in {row.kind for row in report.by_component}


def test_layer_times_need_a_profiling_backend(run: Path) -> None:
    with pytest.raises(BackendError, match="profile=True"):
        load_predictor(run, threads=1).backend.layer_times()
    assert component_of("/model/decoder/layers.0/cross_attn/GridSample") == "decoder"
    assert component_of("backbone.stages.2") == "backbone"
    assert component_of("/postprocess/Min") == "postprocess"


def test_profile_command_writes_its_folder(run: Path) -> None:
    result = CliRunner().invoke(
        app, ["profile", str(run), "--runs", "2", "--threads", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert Path(report["plot"]).parent == run / "profile" and report["runs"] == 2
    text = CliRunner().invoke(app, ["profile", str(run), "--runs", "2", "--threads", "1"])
    assert text.exit_code == 0 and "Inference by part of the model" in text.output
