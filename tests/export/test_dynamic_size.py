"""Dynamic-size export (anchors and position embeddings computed in the graph) and rectangular
inference of a letterboxed model with ONNX Runtime and OpenVINO, against torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from detection_asserts import assert_same_detections
from run_builder import write_run

from dfseg.export.api import export_model
from dfseg.export.options import ExportOptions
from dfseg.export.source import find_export_source
from dfseg.nn.aifi import sincos_position_embedding
from dfseg.nn.anchors import generate_anchors
from dfseg.nn.deformable_attention import split_value_levels
from dfseg.runtime.outputs import RawOutputs
from dfseg.runtime.predictor import Predictor, load_predictor
from dfseg.structures import Detections
from dfseg.structures.manifest import ArtifactManifest

pytestmark = pytest.mark.export


def _record_input_shapes(predictor: Predictor) -> list[tuple[int, ...]]:
    """[B, 3, H, W] of every batch the predictor's backend runs (float NCHW or uint8 NHWC)."""
    seen: list[tuple[int, ...]] = []
    backend = predictor.backend
    run, run_uint8 = backend.run, backend.run_uint8

    def recording(images: np.ndarray) -> RawOutputs:
        seen.append(images.shape)
        return run(images)

    def recording_uint8(images: np.ndarray) -> RawOutputs:
        seen.append((images.shape[0], 3, *images.shape[1:3]))
        return run_uint8(images)

    backend.run = recording  # type: ignore[method-assign]
    backend.run_uint8 = recording_uint8  # type: ignore[method-assign]
    return seen


def test_size_dependent_functions_take_traced_sizes_and_give_the_same_values() -> None:
    """While a dynamic-size export is traced, level sizes are 0-d tensors (graph values); the
    model's own functions then compute the same anchors, embeddings and level maps."""
    shapes = [(12, 20), (6, 10)]
    traced = [(torch.tensor(h), torch.tensor(w)) for h, w in shapes]
    for got, want in zip(generate_anchors(traced), generate_anchors(shapes), strict=True):
        assert torch.equal(got, want)
    assert torch.equal(
        sincos_position_embedding(torch.tensor(10), torch.tensor(6), 128),
        sincos_position_embedding(10, 6, 128),
    )
    memory = torch.randn(2, 12 * 20 + 6 * 10, 64)
    for got, want in zip(
        split_value_levels(memory, traced, 8), split_value_levels(memory, shapes, 8), strict=True
    ):
        assert torch.equal(got, want)


@pytest.mark.slow
def test_rect_inference_on_dynamic_size_exports_matches_torch(tmp_path: Path) -> None:
    _, run = write_run(tmp_path, task="segment", keep_ratio=True, image_hw=(192, 320), size=320)
    options = ExportOptions(formats=["onnx", "openvino"], dynamic_size=True, parity_images=2)
    report = export_model(find_export_source(run), options)
    for artifact in report.artifacts:
        assert Path(artifact.folder).name.endswith("-b1-anysize")
        assert artifact.parity is not None and artifact.parity.passed, artifact.parity
        assert artifact.parity.images == 4  # two sizes: 320x320 and 384x320
        assert ArtifactManifest.read(Path(artifact.folder)).dynamic_size
    image = np.full((170, 320, 3), 114, np.uint8)
    image[30:120, 50:200] = (20, 180, 240)
    reference = load_predictor(run, conf=0.0, max_det=10, rect=True)(image)
    for artifact in report.artifacts:
        predictor = load_predictor(artifact.model_file, conf=0.0, max_det=10, rect=True)
        seen = _record_input_shapes(predictor)
        detections = predictor(image)
        assert seen == [(1, 3, 192, 320)]
        assert isinstance(detections, Detections) and isinstance(reference, Detections)
        assert_same_detections(detections, reference)
        assert detections.masks is not None and reference.masks is not None
        assert abs(int(detections.masks.sum()) - int(reference.masks.sum())) < 1e-3 * image.size
