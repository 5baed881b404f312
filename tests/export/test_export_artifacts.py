"""Real exports of the N model (ONNX, OpenVINO): folders, manifests, parity with torch, batches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dfseg.export.api import export_model
from dfseg.export.errors import ExportError
from dfseg.export.onnx_export import embedded_manifest
from dfseg.export.options import ExportOptions
from dfseg.export.report import ExportReport
from dfseg.export.source import file_sha256, find_export_source
from dfseg.runtime.backends import BackendOptions, backend_class
from dfseg.structures.manifest import ArtifactManifest

pytestmark = pytest.mark.export


def _artifact(report: ExportReport, fmt: str):  # type: ignore[no-untyped-def]
    return next(a for a in report.artifacts if a.format == fmt)


def test_every_artifact_has_its_folder_and_passes_parity_on_val_images(
    exported: ExportReport, segment_run: tuple[Path, Path]
) -> None:
    _, run = segment_run
    names = sorted(Path(a.folder).name for a in exported.artifacts)
    assert names == ["onnx-fp32-dyn", "openvino-fp32-dyn"]
    for artifact in exported.artifacts:
        assert Path(artifact.folder).parent == run / "export"
        assert Path(artifact.model_file).is_file()
        parity = artifact.parity
        assert parity is not None and parity.passed, parity
        assert parity.image_source.startswith("val (2) + train (1) split")
        assert parity.images == 3 and parity.matched == parity.compared >= 3 * 20
        assert parity.max_score_diff < 1e-3 and parity.max_box_diff_px < 0.5
        assert parity.min_mask_iou is not None and parity.min_mask_iou > 0.95
    assert exported.passed


def test_manifest_round_trip_and_onnx_metadata(
    exported: ExportReport, segment_run: tuple[Path, Path]
) -> None:
    _, run = segment_run
    onnx_dir = Path(_artifact(exported, "onnx").folder)
    manifest = ArtifactManifest.read(onnx_dir)
    assert manifest.format == "onnx" and manifest.precision == "fp32"
    assert manifest.batch == 2 and manifest.dynamic_batch and not manifest.dynamic_size
    assert manifest.model.task == "segment" and manifest.model.image_size == (256, 256)
    assert manifest.class_names == ["circle", "square", "triangle"]
    assert manifest.threshold == pytest.approx(0.02)
    assert manifest.outputs == ["labels", "boxes", "scores", "mask_logits"]
    assert manifest.source_sha256 == file_sha256(run / "best.pt")
    text = embedded_manifest(onnx_dir / "model.onnx")
    assert text is not None
    assert ArtifactManifest.model_validate(json.loads(text)) == manifest
    openvino = ArtifactManifest.read(Path(_artifact(exported, "openvino").folder))
    assert openvino.format == "openvino"
    assert manifest.decode == openvino.decode == "nms" and manifest.nms_iou == 0.5  # defaults
    assert openvino.runtime_hints == {"INFERENCE_PRECISION_HINT": "f32"}


def test_the_onnx_graph_contains_the_nms_decoding(exported: ExportReport) -> None:
    ort = pytest.importorskip("onnxruntime")
    from dfseg.nn.postprocess import fast_nms_keep

    session = ort.InferenceSession(
        _artifact(exported, "onnx").model_file, providers=["CPUExecutionProvider"]
    )
    rng = np.random.default_rng(0)
    images = rng.random((2, 3, 256, 256), dtype=np.float32)
    labels, boxes, scores, _ = session.run(None, {"images": images})
    for b in range(2):
        kept = scores[b] > 0
        assert kept.any() and not kept[int(kept.sum()) :].any()  # dropped rows come last
        survivors = torch.from_numpy(boxes[b][kept])[None], torch.from_numpy(labels[b][kept])[None]
        assert fast_nms_keep(*survivors, iou_threshold=0.5).all()  # no same-class overlap left


def test_onnx_graph_signature(exported: ExportReport) -> None:
    onnx = pytest.importorskip("onnx")
    model = onnx.load(_artifact(exported, "onnx").model_file)
    assert model.opset_import[0].version >= 17
    inputs = {i.name: i.type.tensor_type for i in model.graph.input}
    assert list(inputs) == ["images"]
    assert inputs["images"].elem_type == onnx.TensorProto.FLOAT
    dims = inputs["images"].shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 256, 256]
    outputs = {o.name: o.type.tensor_type.elem_type for o in model.graph.output}
    assert list(outputs) == ["labels", "boxes", "scores", "mask_logits"]
    assert outputs["labels"] == onnx.TensorProto.INT64


@pytest.mark.parametrize("fmt,backend", [("onnx", "onnxruntime"), ("openvino", "openvino")])
def test_dynamic_batch_of_two_equals_two_single_runs(
    exported: ExportReport, fmt: str, backend: str
) -> None:
    path = Path(_artifact(exported, fmt).model_file)
    runner = backend_class(backend).open(path, BackendOptions(threads=1, precision="fp32"))
    rng = np.random.default_rng(0)
    images = rng.random((2, 3, 256, 256), dtype=np.float32)
    pair = runner.run(images)
    for index in range(2):
        single = runner.run(np.ascontiguousarray(images[index : index + 1]))
        np.testing.assert_array_equal(pair.labels[index], single.labels[0])
        np.testing.assert_allclose(pair.scores[index], single.scores[0], atol=1e-5)
        np.testing.assert_allclose(pair.boxes[index], single.boxes[0], atol=1e-2)
        assert pair.mask_logits is not None and single.mask_logits is not None
        np.testing.assert_allclose(pair.mask_logits[index], single.mask_logits[0], atol=1e-3)
    three = runner.run(rng.random((3, 3, 256, 256), dtype=np.float32))
    assert three.scores.shape == (3, 300)  # no batch size baked into the graph


def test_openvino_precision_is_explicit(exported: ExportReport) -> None:
    path = Path(_artifact(exported, "openvino").model_file)
    backend = backend_class("openvino")
    assert backend.open(path, BackendOptions(threads=1)).info["precision"] == "fp32"
    default = backend.open(path, BackendOptions(threads=1, precision="default")).info
    assert default["precision"] in ("bf16", "fp32")  # bf16 where the CPU has it


def test_existing_folder_is_refused_without_force(segment_run: tuple[Path, Path]) -> None:
    project, _ = segment_run
    options = ExportOptions(formats=["onnx"], batch=2, dynamic_batch=True)
    with pytest.raises(ExportError, match="already exists; pass --force"):
        export_model(find_export_source(project), options)


@pytest.mark.slow
def test_static_batch_two_export_runs_batches_of_any_size(
    segment_run: tuple[Path, Path], exported: ExportReport
) -> None:
    from dfseg.runtime.predictor import load_predictor

    _, run = segment_run
    report = export_model(
        find_export_source(run), ExportOptions(formats=["onnx"], batch=2, parity_images=3)
    )
    artifact = report.artifacts[0]
    assert Path(artifact.folder).name == "onnx-fp32-b2" and artifact.passed
    static = load_predictor(artifact.model_file, conf=0.0, max_det=20)
    dynamic = load_predictor(_artifact(exported, "onnx").model_file, conf=0.0, max_det=20)
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, (200, 300, 3), dtype=np.uint8) for _ in range(3)]
    for got, want in zip(static.predict_batch(images), dynamic.predict_batch(images), strict=True):
        np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)
        np.testing.assert_allclose(got.boxes_xyxy, want.boxes_xyxy, atol=1e-2)
