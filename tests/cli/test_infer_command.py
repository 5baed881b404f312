"""`dfseg infer` through the CLI on a fake run (torch backend)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from dfseg.cli.app import app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
from run_builder import write_run

runner = CliRunner()


def test_infer_on_a_project_writes_a_new_folder_and_reports(tmp_path: Path) -> None:
    project, run = write_run(tmp_path / "p", task="detect")
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(images / name), np.full((100, 150, 3), 128, np.uint8))
    (images / "c.jpg").write_bytes(b"broken")
    args = ["infer", str(project), str(images), "--conf", "0", "--save-txt", "--no-save-images"]
    result = runner.invoke(app, [*args, "--json", "infer.max_det=4"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # the start banner goes to stderr
    assert Path(report["out_dir"]) == run / "infer"
    assert report["images"] == 2 and report["detections"] == 8 and len(report["unreadable"]) == 1
    assert sorted(p.name for p in (run / "infer" / "labels").iterdir()) == ["a.txt", "b.txt"]
    assert not (run / "infer" / "a.png").exists()  # --no-save-images

    text = runner.invoke(app, ["infer", str(run), str(images / "a.png"), "--conf", "0"])
    assert text.exit_code == 0, text.output
    assert "1 images: 300 detections (torch)" in text.output
    assert "Results saved to" in text.output and (run / "infer-2" / "a.png").is_file()


def test_infer_errors_are_clear(tmp_path: Path) -> None:
    _, run = write_run(tmp_path, task="detect")
    missing = runner.invoke(app, ["infer", str(run), str(tmp_path / "none*.jpg")])
    assert missing.exit_code == 2 and "no such file, folder or matching" in missing.output
    backend = runner.invoke(app, ["infer", str(run), str(tmp_path), "--backend", "openvino"])
    assert (
        backend.exit_code == 2 and "no export that the openvino backend can run" in backend.output
    )
