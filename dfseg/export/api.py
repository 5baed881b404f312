"""`export_model`: write ONNX / OpenVINO / TensorRT artifacts of a trained checkpoint, each in its
own folder with a manifest, and check each one against torch on real images."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from dfseg import __version__
from dfseg.export.errors import ExportError
from dfseg.export.onnx_export import ONNX_FILE, export_onnx, import_onnx
from dfseg.export.openvino_export import OPENVINO_FILE, export_openvino, openvino_runtime_hints
from dfseg.export.options import (
    MANIFEST_FORMATS,
    ExportFormat,
    ExportOptions,
    artifact_folder_name,
    artifact_precision,
)
from dfseg.export.parity import (
    ParityReport,
    compare_outputs,
    compare_semantic,
    merge_reports,
    semantic_tolerance_for,
    tolerance_for,
)
from dfseg.export.report import ArtifactReport, ExportReport
from dfseg.export.source import ExportSource, file_sha256, parity_images
from dfseg.export.tensorrt_export import ENGINE_FILE, export_tensorrt
from dfseg.nn.model import DFine, ModelSpecError
from dfseg.nn.postprocess import max_detections
from dfseg.nn.semantic_model import DFineSemantic
from dfseg.nn.trained import InferenceGraph, SemanticGraph, load_trained_model
from dfseg.runtime.backends import BackendOptions, backend_class
from dfseg.runtime.backends.base import raw_outputs_from
from dfseg.runtime.backends.onnxruntime_backend import METADATA_KEY, import_onnxruntime
from dfseg.runtime.backends.openvino_backend import import_openvino
from dfseg.runtime.backends.tensorrt_backend import import_tensorrt
from dfseg.runtime.outputs import RawOutputs
from dfseg.runtime.postprocess import PostprocessSettings
from dfseg.runtime.predictor import Predictor
from dfseg.runtime.preprocess import preprocess_batch
from dfseg.structures.manifest import ArtifactManifest, ModelDescription
from dfseg.structures.progress import ProgressCallback, ProgressEvent, report

# Export format -> (model file name, backend that runs it for the parity check).
FORMAT_FILES: dict[str, tuple[str, str]] = {
    "onnx": (ONNX_FILE, "onnxruntime"),
    "openvino": (OPENVINO_FILE, "openvino"),
    "trt": (ENGINE_FILE, "tensorrt"),
}
# Export format -> the dependency checks it needs up front.
FORMAT_DEPENDENCIES = {
    "onnx": (import_onnx, import_onnxruntime),
    "openvino": (import_onnx, import_openvino),
    "trt": (import_onnx, import_tensorrt),
}


@dataclass
class _Prepared:
    """Everything the artifacts share: the traced graph, the base manifest, parity data."""

    graph: InferenceGraph | SemanticGraph
    manifest: ArtifactManifest
    input_hw: tuple[int, int]
    checks: list[tuple[np.ndarray, RawOutputs]]  # parity batches [N, 3, H, W], torch outputs
    image_source: str


def export_model(
    source: ExportSource, options: ExportOptions, progress: ProgressCallback | None = None
) -> ExportReport:
    """Export `source.checkpoint` in every format of `options`.

    Each artifact goes to `<run>/export/<format>-<precision>-b<N>|-dyn/` with `manifest.json`;
    an existing folder is an error unless `options.force`. After writing, the artifact runs on
    the parity images beside torch; the report says whether they agree within tolerance
    (`ExportReport.passed`).

    Raises:
        ExportError: an existing folder without force, a failed conversion.
        MissingDependencyError: a format's package is not installed.
    """
    for fmt in options.formats:
        for check in FORMAT_DEPENDENCIES[fmt]:
            check()
    if "trt" in options.formats and not torch.cuda.is_available():
        raise ExportError("TensorRT export needs a CUDA GPU; none is visible")
    model, trained = load_trained_model(source.checkpoint)
    semantic = isinstance(model, DFineSemantic)
    trained_hw = tuple(trained.model.image_size)
    folders = _claim_folders(source, options, trained_hw, semantic)  # type: ignore[arg-type]
    prepared = _prepare(model, trained, source, options)
    artifacts: list[ArtifactReport] = []
    with tempfile.TemporaryDirectory(prefix="dfseg-export-") as scratch:
        started = time.perf_counter()
        onnx_path = _write_onnx(prepared, options, Path(scratch) / ONNX_FILE)
        onnx_seconds = time.perf_counter() - started
        for index, fmt in enumerate(options.formats):
            report(progress, ProgressEvent("export", index, len(options.formats), {"format": fmt}))
            artifact = _export_one(fmt, folders[fmt], onnx_path, prepared, options)
            artifact.seconds = round(artifact.seconds + onnx_seconds, 1)  # every format needs it
            artifacts.append(artifact)
            report(progress, ProgressEvent("export", index + 1, len(options.formats)))
    return ExportReport(
        source_checkpoint=str(source.checkpoint),
        run_dir=None if source.run is None else str(source.run.path),
        task=prepared.manifest.model.task,
        input_size=prepared.input_hw,
        options=options,
        artifacts=artifacts,
    )


def _prepare(
    model: DFine | DFineSemantic,
    manifest: ArtifactManifest,
    source: ExportSource,
    options: ExportOptions,
) -> _Prepared:
    trained_hw = tuple(manifest.model.image_size)
    input_hw = tuple(options.image_size or trained_hw)
    if input_hw != trained_hw:
        model.set_image_size(input_hw)  # type: ignore[arg-type]
    limited = options.num_queries is not None or options.decoder_layers is not None
    if limited and isinstance(model, DFineSemantic):
        raise ExportError("num_queries and decoder_layers are for detect and segment models")
    if limited and isinstance(model, DFine):
        try:
            model.limit_decoder(options.num_queries, options.decoder_layers)
        except ModelSpecError as exc:
            raise ExportError(f"{source.checkpoint}: {exc}") from None
        manifest = manifest.model_copy(update={"model": model.description})
    model.deploy(fuse_backbone=True)
    graph: InferenceGraph | SemanticGraph
    if isinstance(model, DFineSemantic):
        graph = SemanticGraph(model, options.semantic_output).eval()
    else:
        description = manifest.model
        top_k = min(
            options.top_k,
            max_detections(description.num_queries, description.num_classes, manifest.decode),
        )
        options = options.model_copy(update={"top_k": top_k})
        graph = InferenceGraph(model, top_k, manifest.decode, manifest.nms_iou).eval()
    manifest = _base_manifest(manifest, source, options, input_hw, graph.output_names)  # type: ignore[arg-type]
    images = parity_images(source.project, options.parity_images, input_hw)  # type: ignore[arg-type]
    batch, _ = preprocess_batch(images.images, manifest.preprocessing)
    batches = [batch]
    if options.dynamic_size:  # also check another size: 64 more rows of letterbox padding
        fill = manifest.preprocessing.pad_value * manifest.preprocessing.scale
        extra = np.full((*batch.shape[:2], 64, batch.shape[3]), fill, dtype=np.float32)
        batches.append(np.concatenate([batch, extra], axis=2))
    checks = [(b, _run_torch(graph, b)) for b in batches]  # the reference: as trained
    if isinstance(model, DFine):
        model.set_attention_sum(options.attention_sum)  # exported, then checked against it
        manifest = manifest.model_copy(update={"attention_sum": options.attention_sum})
    return _Prepared(graph, manifest, input_hw, checks, images.source)  # type: ignore[arg-type]


def _base_manifest(
    trained: ArtifactManifest,
    source: ExportSource,
    options: ExportOptions,
    input_hw: tuple[int, int],
    outputs: list[str],
) -> ArtifactManifest:
    model = ModelDescription(**{**trained.model.model_dump(), "image_size": input_hw})
    preprocessing = trained.preprocessing.model_copy(update={"input_size": input_hw})
    return trained.model_copy(
        update={
            "model": model,
            "preprocessing": preprocessing,
            "batch": options.batch,
            "dynamic_batch": options.dynamic_batch,
            "dynamic_size": options.dynamic_size,
            "top_k": options.top_k,
            "outputs": list(outputs),
            "source_checkpoint": str(source.checkpoint.resolve()),
            "source_sha256": file_sha256(source.checkpoint),
            "dfseg_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(),
        }
    )


def _run_torch(graph: InferenceGraph | SemanticGraph, batch: np.ndarray) -> RawOutputs:
    """Torch outputs, one image at a time (the reference every artifact is compared with)."""
    parts = []
    with torch.inference_mode():
        for image in batch:
            outputs = graph(torch.from_numpy(image[None]))
            parts.append([output.numpy() for output in outputs])
    stacked = [np.concatenate(column) for column in zip(*parts, strict=True)]
    return raw_outputs_from(dict(zip(graph.output_names, stacked, strict=True)))


def _claim_folders(
    source: ExportSource, options: ExportOptions, trained_hw: tuple[int, int], semantic: bool
) -> dict[str, Path]:
    """Each format's folder; all are checked before anything is written."""
    folders: dict[str, Path] = {}
    for fmt in options.formats:
        folder = source.export_root / artifact_folder_name(fmt, options, trained_hw, semantic)
        if folder.exists() and not options.force:
            raise ExportError(
                f"{folder} already exists; pass --force to replace it (or export with other "
                "options)"
            )
        folders[fmt] = folder
    return folders


def _write_onnx(prepared: _Prepared, options: ExportOptions, path: Path) -> Path:
    manifest = _artifact_manifest(prepared.manifest, "onnx", options)
    return export_onnx(
        prepared.graph, path, prepared.input_hw, options.batch, options.dynamic_batch,
        dynamic_size=options.dynamic_size, opset=options.opset, simplify=options.simplify,
        metadata={METADATA_KEY: manifest.model_dump_json()},
    )  # fmt: skip


def _artifact_manifest(
    base: ArtifactManifest, fmt: ExportFormat, options: ExportOptions
) -> ArtifactManifest:
    hints = openvino_runtime_hints(options.half) if fmt == "openvino" else {}
    return base.model_copy(
        update={
            "format": MANIFEST_FORMATS[fmt],
            "precision": artifact_precision(fmt, options.half),
            "runtime_hints": hints,
        }
    )


def _export_one(
    fmt: ExportFormat, folder: Path, onnx_path: Path, prepared: _Prepared, options: ExportOptions
) -> ArtifactReport:
    started = time.perf_counter()
    manifest = _artifact_manifest(prepared.manifest, fmt, options)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=_parent(folder)))
    try:
        file_name, backend_name = FORMAT_FILES[fmt]
        _write_model(fmt, onnx_path, staging / file_name, manifest, prepared, options)
        manifest.write(staging)
        if folder.exists():
            shutil.rmtree(folder)  # only reached with force (checked in _claim_folders)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    seconds = time.perf_counter() - started
    parity, runtime_precision = _check_parity(folder / file_name, backend_name, prepared, options)
    parity.write(folder)  # `dfseg bench` shows an artifact that failed it
    size = sum(path.stat().st_size for path in folder.iterdir() if path.is_file())
    return ArtifactReport(
        format=fmt,
        precision=manifest.precision,
        runtime_precision=runtime_precision,
        folder=str(folder),
        model_file=str(folder / file_name),
        size_mb=round(size / 2**20, 2),
        seconds=round(seconds, 1),
        parity=parity,
    )


def _parent(folder: Path) -> Path:
    folder.parent.mkdir(parents=True, exist_ok=True)
    return folder.parent


def _write_model(
    fmt: ExportFormat,
    onnx_path: Path,
    target: Path,
    manifest: ArtifactManifest,
    prepared: _Prepared,
    options: ExportOptions,
) -> None:
    if fmt == "onnx":  # the scratch ONNX already embeds this very manifest
        shutil.copyfile(onnx_path, target)
    elif fmt == "openvino":
        export_openvino(onnx_path, target, options.half, manifest.model_dump_json())
    else:
        export_tensorrt(
            onnx_path, target, prepared.input_hw, options.batch, options.dynamic_batch, options.half
        )


def _check_parity(
    model_file: Path, backend_name: str, prepared: _Prepared, options: ExportOptions
) -> tuple[ParityReport, str]:
    backend = backend_class(backend_name).open(model_file, BackendOptions(threads=options.threads))
    runtime_precision = backend.info.get("precision", backend.manifest.precision)
    predictor = Predictor(backend, PostprocessSettings())
    if isinstance(prepared.graph, SemanticGraph):
        semantic_reports = [
            compare_semantic(
                reference,
                predictor.run_resized(_as_uint8_bgr(batch, prepared.manifest)),
                semantic_tolerance_for(runtime_precision),
                prepared.image_source,
                runtime_precision,
            )
            for batch, reference in prepared.checks
        ]
        return merge_reports(semantic_reports), runtime_precision
    tolerance = tolerance_for(runtime_precision, prepared.manifest.threshold)
    reports = [
        compare_outputs(
            reference,
            predictor.run_resized(_as_uint8_bgr(batch, prepared.manifest)),
            tolerance,
            (batch.shape[2], batch.shape[3]),
            prepared.image_source,
            runtime_precision,
        )
        for batch, reference in prepared.checks
    ]
    return merge_reports(reports), runtime_precision


def _as_uint8_bgr(batch: np.ndarray, manifest: ArtifactManifest) -> np.ndarray:
    """[B, 3, H, W] float RGB tensors back to the resized [B, H, W, 3] uint8 BGR images they were
    made from (exact: every value is k * scale), to check artifacts through the path
    `Predictor.predict_arrays` takes."""
    values = np.rint(batch / np.float32(manifest.preprocessing.scale))
    return np.ascontiguousarray(values.clip(0, 255).astype(np.uint8)[:, ::-1].transpose(0, 2, 3, 1))
