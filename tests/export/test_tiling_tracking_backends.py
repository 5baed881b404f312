"""Tiled inference and tracking run on the predictor's detections, so every backend gives what
torch gives: checked with the session's ONNX and OpenVINO exports (dynamic batch: the tiles of
an image go in one call)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from detection_asserts import assert_same_detections

import dfseg
from dfseg.data.synthetic_video import render_tracking_video
from dfseg.export.report import ExportReport
from dfseg.runtime.infer import InferOptions, infer
from dfseg.runtime.sources import open_sources
from dfseg.runtime.tiling import TileSettings
from dfseg.structures import Detections

pytestmark = pytest.mark.export


def _predictors(exported: ExportReport, run: Path, **options: object) -> dict[str, object]:
    onnx = next(a for a in exported.artifacts if a.format == "onnx")
    openvino = next(a for a in exported.artifacts if a.format == "openvino")
    return {
        "torch": dfseg.load(run / "best.pt", **options),
        "onnxruntime": dfseg.load(onnx.model_file, **options),
        "openvino": dfseg.load(Path(openvino.folder), threads=1, **options),
    }


def _large_image() -> np.ndarray:
    rng = np.random.default_rng(7)
    image = rng.integers(0, 60, (420, 610, 3), dtype=np.uint8)
    for x, y in ((60, 50), (230, 200), (240, 60), (420, 300), (520, 120)):  # 2 cut by borders
        image[y : y + 70, x : x + 90] = (30, 200, 240)
    return image


def test_tiled_predictions_agree_across_backends(
    exported: ExportReport, segment_run: tuple[Path, Path]
) -> None:
    _, run = segment_run
    predictors = _predictors(exported, run, conf=0.0, max_det=10)
    tiling = TileSettings(size=256, overlap=0.2, batch=6)
    for predictor in predictors.values():
        predictor.tiling = tiling  # type: ignore[attr-defined]
    reference = predictors.pop("torch")(_large_image())  # type: ignore[operator]
    assert isinstance(reference, Detections) and len(reference) > 0
    assert reference.masks is not None and reference.masks.shape[1:] == (420, 610)
    for name, predictor in predictors.items():
        detections = predictor(_large_image())  # type: ignore[operator]
        assert isinstance(detections, Detections), name
        assert_same_detections(detections, reference)
        assert predictor.times.images == 1  # type: ignore[attr-defined]


def test_tracks_agree_across_backends(
    exported: ExportReport, segment_run: tuple[Path, Path], tmp_path: Path
) -> None:
    _, run = segment_run
    video = tmp_path / "shapes.mp4"
    render_tracking_video(video, num_frames=12, image_size=(240, 320), num_objects=3, seed=2)
    tracks = {}
    for name, predictor in _predictors(exported, run, conf=0.2, max_det=8).items():
        options = InferOptions(track=True, save_images=False)
        report = infer(predictor, open_sources(video), tmp_path / name, options)  # type: ignore[arg-type]
        assert report.frames == 12 and report.tracks > 0, name
        lines = (tmp_path / name / "predictions.jsonl").read_text().splitlines()
        tracks[name] = [
            sorted(d["track_id"] for d in json.loads(line)["detections"]) for line in lines
        ]
        assert (tmp_path / name / "mot" / "shapes.txt").is_file()
    assert tracks["onnxruntime"] == tracks["torch"] and tracks["openvino"] == tracks["torch"]
