"""`export.attention_sum`: exports sum deformable attention's samples per level by default (no
Concat in the graph's cross-attention), checked by the parity run against the model as trained,
and record it; `attention_sum="concat"` exports the trained layout into a folder of its own."""

from __future__ import annotations

from pathlib import Path

import onnx

from dfseg.config.deploy import ExportConfig
from dfseg.export.api import ExportReport, export_model
from dfseg.export.options import ExportOptions, options_from_config
from dfseg.export.source import find_export_source
from dfseg.structures.manifest import ArtifactManifest


def cross_attention_ops(model_file: Path) -> set[str]:
    graph = onnx.load(str(model_file)).graph
    return {node.op_type for node in graph.node if "cross_attn" in node.name}


def test_default_export_sums_per_level_and_matches_the_trained_layout(
    exported: ExportReport,
) -> None:
    assert exported.passed, exported.failures()  # parity against torch as trained ("concat")
    for artifact in exported.artifacts:
        manifest = ArtifactManifest.read(Path(artifact.folder) / "manifest.json")
        assert manifest.attention_sum == "levels"
    onnx_file = next(a.model_file for a in exported.artifacts if a.format == "onnx")
    ops = cross_attention_ops(Path(onnx_file))
    assert "GridSample" in ops and "Concat" not in ops


def test_concat_layout_is_kept_on_request(segment_run: tuple[Path, Path]) -> None:
    project, _ = segment_run
    options = ExportOptions(formats=["onnx"], attention_sum="concat", parity_images=2, force=True)
    report = export_model(find_export_source(project), options)
    assert report.passed, report.failures()
    folder = Path(report.artifacts[0].folder)
    assert folder.name.endswith("-concat")
    assert ArtifactManifest.read(folder / "manifest.json").attention_sum == "concat"
    assert "Concat" in cross_attention_ops(folder / "model.onnx")


def test_project_file_sets_the_attention_sum() -> None:
    assert options_from_config(ExportConfig()).attention_sum == "levels"
    config = ExportConfig(attention_sum="concat")
    assert options_from_config(config).attention_sum == "concat"
