"""`dfseg export` through the CLI: report, --json, refusing existing folders, parity failures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dfseg.cli.app import app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
from run_builder import write_run

runner = CliRunner()
pytestmark = [pytest.mark.export, pytest.mark.slow]


def test_export_reports_parity_refuses_to_overwrite_and_fails_on_mismatch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    project, run = write_run(tmp_path, task="detect")
    result = runner.invoke(app, ["export", str(project), "--fmt", "onnx", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # the start banner goes to stderr
    artifact = report["artifacts"][0]
    assert Path(artifact["folder"]) == run / "export" / "onnx-fp32-b1"
    assert artifact["parity"]["passed"] and artifact["parity"]["matched"] > 0
    assert report["options"]["formats"] == ["onnx"]  # --fmt beats the project's [onnx, openvino]

    again = runner.invoke(app, ["export", str(run), "--fmt", "onnx"])
    assert again.exit_code == 2 and "already exists; pass --force" in again.output

    from dfseg.export import api
    from dfseg.export.parity import ParityTolerance

    impossible = ParityTolerance(score=-1.0, box_fraction=0.0, mask_iou=1.0)
    monkeypatch.setattr(api, "tolerance_for", lambda precision, threshold: impossible)
    failed = runner.invoke(app, ["export", str(run / "best.pt"), "--fmt", "onnx", "--force"])
    assert failed.exit_code == 1
    assert "FAILED" in failed.output and "parity check failed" in failed.output
    assert "have no counterpart" in failed.output


def test_export_flags_are_validated(tmp_path: Path) -> None:
    project, _ = write_run(tmp_path, task="detect")
    bad_size = runner.invoke(app, ["export", str(project), "--image-size", "250", "256"])
    assert bad_size.exit_code == 2 and "multiples of 32" in bad_size.output
    bad_format = runner.invoke(app, ["export", str(project), "--fmt", "coreml"])
    assert bad_format.exit_code == 2 and "onnx" in bad_format.output
    missing = runner.invoke(app, ["export", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "no such file or folder" in missing.output
