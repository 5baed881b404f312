"""One export per test session (ONNX + OpenVINO FP32, dynamic batch, N segment at 256 px) of a
fake run, shared by the export tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))

from run_builder import write_run

from dfseg.export.api import export_model
from dfseg.export.options import ExportOptions
from dfseg.export.report import ExportReport
from dfseg.export.source import find_export_source


@pytest.fixture(scope="session")
def segment_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(project file, run folder) of a fake segmentation run."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("openvino")
    return write_run(tmp_path_factory.mktemp("export-run"), task="segment")


@pytest.fixture(scope="session")
def exported(segment_run: tuple[Path, Path]) -> ExportReport:
    """The run exported to ONNX and OpenVINO FP32 with a dynamic batch (parity on 3 images)."""
    project, _ = segment_run
    source = find_export_source(project)
    options = ExportOptions(
        formats=["onnx", "openvino"], batch=2, dynamic_batch=True, parity_images=3
    )
    return export_model(source, options)
