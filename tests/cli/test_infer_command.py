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


def test_infer_track_and_tile_options(tmp_path: Path) -> None:
    """--track on a video and --tile on a large image, through the CLI with a real (random)
    model: track ids in the JSONL match the MOT file; tiling runs and refuses a bad merge."""
    from dfseg.data.synthetic_video import render_tracking_video

    _, run = write_run(tmp_path / "p", task="segment")
    video = tmp_path / "shapes.mp4"
    render_tracking_video(video, num_frames=12, image_size=(192, 256), seed=2)
    args = ["infer", str(run), str(video), "--track", "--conf", "0.05", "--stride", "2"]
    result = runner.invoke(app, [*args, "--json", "infer.tracker.low_thresh=0.02"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["frames"] == 6 and report["tracks"] >= 1
    out = Path(report["out_dir"])
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [line["frame"] for line in lines] == [0, 2, 4, 6, 8, 10]
    tracked = [(line["frame"] + 1, d["track_id"]) for line in lines for d in line["detections"]]
    assert tracked and all(track_id >= 1 for _, track_id in tracked)
    mot = (out / "mot" / "shapes.txt").read_text().splitlines()
    assert sorted((int(r.split(",")[0]), int(r.split(",")[1])) for r in mot) == sorted(tracked)
    assert (out / "mot" / "det" / "shapes.txt").is_file() and (out / "shapes.mp4").is_file()

    large = tmp_path / "large.png"
    cv2.imwrite(str(large), np.random.default_rng(0).integers(0, 255, (600, 900, 3), np.uint8))
    tiled = runner.invoke(
        app, ["infer", str(run), str(large), "--tile", "256", "--tile-overlap", "0.1", "--json"]
    )
    assert tiled.exit_code == 0, tiled.output
    assert json.loads(tiled.stdout)["images"] == 1
    bad = runner.invoke(app, ["infer", str(run), str(large), "--tile-merge", "vote"])
    assert bad.exit_code == 2 and "vote" in bad.output
