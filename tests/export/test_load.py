"""`dfseg.load` on a checkpoint, an ONNX file, an OpenVINO IR and folders: same detections."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from detection_asserts import assert_same_detections

import dfseg
from dfseg.export.report import ExportReport
from dfseg.runtime.errors import BackendError
from dfseg.structures import Detections

pytestmark = pytest.mark.export


def _image() -> np.ndarray:
    rng = np.random.default_rng(5)
    image = rng.integers(0, 60, (200, 300, 3), dtype=np.uint8)
    image[40:120, 60:160] = (30, 200, 240)
    return image


def test_every_artifact_gives_the_same_detections(
    exported: ExportReport, segment_run: tuple[Path, Path]
) -> None:
    _, run = segment_run
    onnx = next(a for a in exported.artifacts if a.format == "onnx")
    openvino = next(a for a in exported.artifacts if a.format == "openvino")
    # A run resolves to its newest export; other tests export this run too (e.g. with a smaller
    # decoder), so make this one the newest whatever order the tests ran in.
    os.utime(Path(openvino.folder) / "manifest.json")
    predictors = {
        "torch": dfseg.load(run / "best.pt", conf=0.0, max_det=15),
        "onnxruntime": dfseg.load(onnx.model_file, conf=0.0, max_det=15),
        "openvino": dfseg.load(Path(openvino.folder), conf=0.0, max_det=15, threads=1),
        "openvino-onnx": dfseg.load(onnx.model_file, backend="openvino", conf=0.0, max_det=15),
        "run-openvino": dfseg.load(run, backend="openvino", conf=0.0, max_det=15),
    }
    assert {name: p.backend.name for name, p in predictors.items()} == {
        "torch": "torch", "onnxruntime": "onnxruntime", "openvino": "openvino",
        "openvino-onnx": "openvino", "run-openvino": "openvino",
    }  # fmt: skip
    reference = predictors.pop("torch")(_image())
    assert isinstance(reference, Detections) and len(reference) == 15
    for name, predictor in predictors.items():
        detections = predictor(_image())
        assert isinstance(detections, Detections), name
        assert predictor.class_names == ["circle", "square", "triangle"]
        assert_same_detections(detections, reference)
        assert detections.masks is not None and reference.masks is not None
        pixels = detections.masks.shape[1] * detections.masks.shape[2]
        assert abs(int(detections.masks.sum()) - int(reference.masks.sum())) < 1e-3 * pixels


def test_a_backend_that_cannot_run_the_file_is_refused(exported: ExportReport) -> None:
    openvino = next(a for a in exported.artifacts if a.format == "openvino")
    with pytest.raises(BackendError, match=r"cannot run a \.xml file"):
        dfseg.load(openvino.model_file, backend="onnxruntime")
    with pytest.raises(BackendError, match="runs the ONNX file as exported"):
        dfseg.load(next(a for a in exported.artifacts if a.format == "onnx").model_file,
                   precision="bf16")  # fmt: skip
