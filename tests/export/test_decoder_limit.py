"""`export.num_queries` / `export.decoder_layers`: a faster decoder chosen at export time, recorded
in the manifest and folder name, checked against torch like every export, and refused with a
clear message when beyond the model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dfseg.cli.app import app
from dfseg.export.api import export_model
from dfseg.export.errors import ExportError
from dfseg.export.options import ExportOptions
from dfseg.export.source import find_export_source
from dfseg.runtime.predictor import load_predictor
from dfseg.structures.manifest import ArtifactManifest

runner = CliRunner()


def test_limited_decoder_exports_with_parity_and_says_so(segment_run: tuple[Path, Path]) -> None:
    project, _ = segment_run
    options = ExportOptions(
        formats=["openvino"], num_queries=40, decoder_layers=2, parity_images=2, force=True
    )
    report = export_model(find_export_source(project), options)
    assert report.passed, report.failures()
    folder = Path(report.artifacts[0].folder)
    assert folder.name.endswith("-q40-l2")
    manifest = ArtifactManifest.read(folder / "manifest.json")
    assert (manifest.model.num_queries, manifest.model.decoder_layers) == (40, 2)
    assert manifest.top_k <= 40 * manifest.model.num_classes
    predictor = load_predictor(folder / "model.xml", "openvino", threads=1, conf=0.0)
    image = np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8)
    detections = predictor.predict_arrays([image])[0]
    assert 0 < len(detections) <= manifest.top_k
    assert detections.masks is not None and detections.masks.shape[1:] == (200, 300)


def test_limits_beyond_the_model_are_refused_before_anything_is_written(
    segment_run: tuple[Path, Path],
) -> None:
    project, run = segment_run
    source = find_export_source(project)
    before = sorted(p.name for p in (run / "export").iterdir()) if (run / "export").exists() else []
    with pytest.raises(ExportError, match=r"decoder_layers must be 1\.\.3"):
        export_model(source, ExportOptions(formats=["onnx"], decoder_layers=5, force=True))
    with pytest.raises(ExportError, match=r"num_queries must be 1\.\.300"):
        export_model(source, ExportOptions(formats=["onnx"], num_queries=301, force=True))
    after = sorted(p.name for p in (run / "export").iterdir()) if (run / "export").exists() else []
    assert after == before


def test_cli_flags_reach_the_export(segment_run: tuple[Path, Path]) -> None:
    project, _ = segment_run
    command = ["export", str(project), "--fmt", "onnx", "--num-queries", "30", "--force"]
    result = runner.invoke(app, [*command, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["options"]["num_queries"] == 30
    assert report["artifacts"][0]["folder"].endswith("onnx-fp32-b1-q30")
