"""OpenVINO INT8 post-training quantization with NNCF, always validated against FP32.

    fp32 = ensure_openvino_fp32(run_dir)                  # exports one when the run has none
    report = quantize_openvino(fp32, data, QuantizeOptions(mode="accuracy", max_drop=0.01))

Two modes: "basic" (`nncf.quantize`) and "accuracy" (`nncf.quantize_with_accuracy_control`,
which returns layers to floating point until the metric drop is within `max_drop`). The
calibration subset size is an explicit option; the report says how many images were really used
(fewer when the train split is smaller). Whatever the mode, the INT8 model is then evaluated on the
validation images beside the FP32 one (metric at the run's threshold, latency end to end at batch
1), and the report holds both: INT8 never silently loses accuracy.

The INT8 IR goes to `<run>/export/openvino-int8/` with a manifest (precision "int8" and the
runtime precision hint for the layers left in floating point, `int8_precision`), so `dfseg bench`
and `dfseg infer` pick it up. FP32 is validated with an f32 hint (the reference), INT8 with its
own hint (what users run).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import shutil
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from dfseg.data.image_reader import read_image_rgb
from dfseg.errors import missing_dependency
from dfseg.export.errors import ExportError
from dfseg.metrics import (
    EvalReport,
    GroupMetrics,
    ImageGroundTruth,
    ImagePredictions,
    build_eval_report,
)
from dfseg.metrics.masks import encode_bool_masks
from dfseg.runtime.artifacts import EXPORT_DIR
from dfseg.runtime.backends.base import raw_outputs_from
from dfseg.runtime.backends.openvino_backend import (
    PRECISION_HINT,
    import_openvino,
    openvino_core,
)
from dfseg.runtime.postprocess import PostprocessSettings, to_detections
from dfseg.runtime.predictor import Predictor, load_predictor
from dfseg.runtime.preprocess import preprocess_image
from dfseg.runtime.signal_stack import install_signal_stack
from dfseg.structures.manifest import MANIFEST_FILE, ArtifactManifest, ManifestError
from dfseg.structures.progress import ProgressCallback, ProgressEvent, report

INT8_FOLDER = "openvino-int8"
OPENVINO_FILE = "model.xml"
EVAL_SETTINGS = PostprocessSettings(conf=0.0, max_det=100)  # COCO's maxDets; mAP needs all
QuantizeMetric = Literal["f1", "map50_95", "map50"]


class QuantizeOptions(BaseModel):
    """How to quantize (defaults mirror the project's `export.quantize` section).

    Attributes:
        mode: "basic" (nncf.quantize) or "accuracy" (nncf.quantize_with_accuracy_control).
        max_drop: largest allowed absolute drop of `metric` (accuracy mode: the target; both
            modes: the pass/fail line of the report).
        metric: "f1" (at the run's threshold), "map50_95" or "map50"; of masks for segmentation.
        calibration_images: calibration subset size (train images).
        preset: NNCF preset: "mixed" (asymmetric activations) or "performance" (symmetric).
        transformer: tell NNCF the model has attention blocks (ModelType.TRANSFORMER).
        int8_precision: OpenVINO compute precision of the layers INT8 leaves in floating point,
            recorded as the artifact's runtime hint: "fp32" (what NNCF's accuracy control
            evaluates with, so its max_drop guarantee holds) or "default" (the device's: bf16 on
            CPUs with AVX-512 BF16 or AMX; ~20% faster for D-FINE-N INT8 at 640 on the 2-core
            dev machine, but outside NNCF's control: on kangaroo-voc it lost 0.03 F1).
        threads: CPU threads for validation and timing (None: all).
        warmup, timing_runs: untimed and timed batch-1 runs of the latency comparison.
        force: replace an existing `openvino-int8` folder.
    """

    model_config = ConfigDict(extra="forbid")

    mode: Literal["basic", "accuracy"] = "accuracy"
    max_drop: float = Field(0.01, ge=0)
    metric: QuantizeMetric = "f1"
    calibration_images: int = Field(300, gt=0)
    preset: Literal["performance", "mixed"] = "mixed"
    transformer: bool = True
    int8_precision: Literal["fp32", "default"] = "fp32"
    threads: int | None = Field(None, gt=0)
    warmup: int = Field(3, ge=0)
    timing_runs: int = Field(20, gt=0)
    force: bool = False


@dataclass(frozen=True)
class QuantizeData:
    """Images for calibration (train split) and validation (val split, with ground truth)."""

    calibration_images: list[Path]
    validation_images: list[Path]
    ground_truths: list[ImageGroundTruth]
    class_names: list[str]


class PrecisionResult(BaseModel):
    """One model's accuracy and speed on the validation images."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    artifact: str
    weights_precision: str
    inference_precision: str
    metric: float
    box: GroupMetrics
    mask: GroupMetrics | None = None
    latency_ms: float
    latency_p95_ms: float


class QuantizeReport(BaseModel):
    """FP32 vs INT8: the table `dfseg quantize` prints.

    Attributes:
        passed: the INT8 metric is at most `max_drop` below FP32's.
        calibration_images: images really used (asked for `calibration_requested`).
        folder: the INT8 artifact's folder.
    """

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    mode: str
    metric: QuantizeMetric
    max_drop: float
    preset: str
    calibration_requested: int
    calibration_images: int
    validation_images: int
    threshold: float
    folder: str
    fp32: PrecisionResult
    int8: PrecisionResult
    drop: float
    passed: bool
    seconds: float


def import_nncf() -> Any:
    try:
        import nncf
    except ImportError:
        raise missing_dependency("nncf", "export", "INT8 quantization") from None
    return nncf


def find_openvino_fp32(run_dir: Path) -> Path | None:
    """The model.xml of the newest FP32, static batch-1 OpenVINO export of the run, or None."""
    found: list[tuple[float, Path]] = []
    for manifest_path in (run_dir / EXPORT_DIR).glob(f"*/{MANIFEST_FILE}"):
        try:
            manifest = ArtifactManifest.read(manifest_path)
        except ManifestError:
            continue
        xml = manifest_path.parent / OPENVINO_FILE
        usable = manifest.format == "openvino" and manifest.precision == "fp32"
        if usable and manifest.batch == 1 and not manifest.dynamic_batch and xml.is_file():
            found.append((manifest_path.stat().st_mtime, xml))
    return max(found)[1] if found else None


def ensure_openvino_fp32(
    run_dir: Path, threads: int | None = None, progress: ProgressCallback | None = None
) -> Path:
    """The run's FP32 OpenVINO model, exported first when there is none."""
    existing = find_openvino_fp32(run_dir)
    if existing is not None:
        return existing
    from dfseg.export.api import export_model
    from dfseg.export.options import ExportOptions
    from dfseg.export.source import find_export_source

    message = "no FP32 OpenVINO export yet: exporting one first"
    report(progress, ProgressEvent("quantize", 0, None, message=message))
    result = export_model(
        find_export_source(run_dir), ExportOptions(formats=["openvino"], threads=threads), progress
    )
    if not result.passed:
        raise ExportError(
            "the FP32 OpenVINO export failed its parity check: " + "; ".join(result.failures())
        )
    return Path(result.artifacts[0].model_file)


def quantize_openvino(
    fp32_xml: Path,
    data: QuantizeData,
    options: QuantizeOptions,
    progress: ProgressCallback | None = None,
) -> QuantizeReport:
    """Quantize an FP32 OpenVINO model to INT8, save it beside, validate both.

    Args:
        fp32_xml: the FP32 IR (its folder holds manifest.json), e.g. `ensure_openvino_fp32`.
        data: calibration and validation images.
        options: mode, target drop, subset size, preset.
        progress: optional callback.

    Raises:
        ExportError: no images, an existing INT8 folder without `force`, a failed quantization.
        MissingDependencyError: nncf or openvino is not installed.
    """
    started = time.perf_counter()
    nncf, ov = import_nncf(), import_openvino()
    if not data.calibration_images or not data.validation_images:
        raise ExportError("quantization needs calibration (train) and validation (val) images")
    manifest = ArtifactManifest.read(fp32_xml.parent / MANIFEST_FILE)
    folder = fp32_xml.parent.parent / INT8_FOLDER
    if folder.exists() and not options.force:
        raise ExportError(f"{folder} already exists; pass --force to replace it")
    validation = _Validation(data, manifest, options.metric)
    calibration = data.calibration_images[: options.calibration_images]
    report(progress, ProgressEvent("quantize", 0, None, message=_plan(options, len(calibration))))
    model = openvino_core().read_model(str(fp32_xml))
    quantized = _quantize(nncf, model, calibration, validation, manifest, options)
    gc.collect()  # NNCF's own Cores go now, then the thread gets a stack that stays valid
    install_signal_stack()
    _write_int8(ov, quantized, manifest, fp32_xml, folder, options.int8_precision)
    report(progress, ProgressEvent("quantize", 0, None, message="validating FP32 and INT8"))
    fp32 = _evaluate(fp32_xml, validation, options, progress)
    int8 = _evaluate(folder / OPENVINO_FILE, validation, options, progress)
    drop = fp32.metric - int8.metric
    _record_metrics(folder, options.metric, fp32.metric, int8.metric)
    return QuantizeReport(
        mode=options.mode,
        metric=options.metric,
        max_drop=options.max_drop,
        preset=options.preset,
        calibration_requested=options.calibration_images,
        calibration_images=len(calibration),
        validation_images=len(data.validation_images),
        threshold=manifest.threshold,
        folder=str(folder),
        fp32=fp32,
        int8=int8,
        drop=drop,
        passed=bool(drop <= options.max_drop + 1e-12),
        seconds=round(time.perf_counter() - started, 1),
    )


def _plan(options: QuantizeOptions, calibration: int) -> str:
    target = f", max {options.metric} drop {options.max_drop}" if options.mode == "accuracy" else ""
    return (
        f"INT8 ({options.mode} mode{target}): calibrating on {calibration} images "
        f"(asked {options.calibration_images}), preset {options.preset}"
    )


class _Validation:
    """The validation images, preprocessed once, and the metric NNCF and the report use."""

    def __init__(self, data: QuantizeData, manifest: ArtifactManifest, metric: QuantizeMetric):
        self.data = data
        self.manifest = manifest
        self.metric = metric
        self.items = [
            (*preprocess_image(_read_bgr(path), manifest.preprocessing), index)
            for index, path in enumerate(data.validation_images)
        ]  # (tensor [3, H, W], resize params, image index)

    def score(self, predictions: Sequence[ImagePredictions], indices: Sequence[int]) -> EvalReport:
        return build_eval_report(
            [self.data.ground_truths[i] for i in indices], predictions, self.data.class_names,
            threshold=self.manifest.threshold,
        )  # fmt: skip

    def value(self, evaluation: EvalReport) -> float:
        group = evaluation.overall.mask if evaluation.task == "segment" else evaluation.overall.box
        assert group is not None
        value = float(getattr(group, self.metric))
        return value if np.isfinite(value) else 0.0

    def nncf_metric(self, compiled: Any, items: Iterable[Any]) -> float:
        """NNCF's validation_fn: run a compiled model on validation items, return the metric."""
        names = [output.get_any_name() for output in compiled.outputs]
        predictions, indices = [], []
        for tensor, params, index in items:
            outputs = compiled(tensor[None])
            raw = raw_outputs_from(
                {n: outputs[o] for n, o in zip(names, compiled.outputs, strict=True)}
            )
            detections = to_detections(raw, 0, params, self.data.class_names, EVAL_SETTINGS)
            predictions.append(_as_predictions(detections.boxes_xyxy, detections.scores,
                                               detections.labels, detections.masks))  # fmt: skip
            indices.append(index)
        return self.value(self.score(predictions, indices))


def _as_predictions(
    boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, masks: np.ndarray | None
) -> ImagePredictions:
    return ImagePredictions(
        boxes, scores, labels, None if masks is None else encode_bool_masks(masks)
    )


def _quantize(
    nncf: Any,
    model: Any,
    calibration: list[Path],
    validation: _Validation,
    manifest: ArtifactManifest,
    options: QuantizeOptions,
) -> Any:
    """Run NNCF; errors come back as `ExportError` naming the mode."""

    def to_input(path: Path) -> np.ndarray:
        return preprocess_image(_read_bgr(path), manifest.preprocessing)[0][None]

    common: dict[str, Any] = {
        "preset": getattr(nncf.QuantizationPreset, options.preset.upper()),
        "subset_size": len(calibration),
        "model_type": nncf.ModelType.TRANSFORMER if options.transformer else None,
    }
    calibration_set = nncf.Dataset(calibration, to_input)
    try:
        with _quiet(nncf):
            if options.mode == "basic":
                return nncf.quantize(model, calibration_set, **common)
            validation_set = nncf.Dataset(validation.items, lambda item: item[0][None])
            return nncf.quantize_with_accuracy_control(
                model, calibration_set, validation_set, validation.nncf_metric,
                max_drop=options.max_drop, drop_type=nncf.DropType.ABSOLUTE, **common,
            )  # fmt: skip
    except Exception as exc:  # NNCF raises many types; the message is what matters
        raise ExportError(
            f"NNCF {options.mode} quantization failed: {type(exc).__name__}: {exc}"
        ) from None


@contextlib.contextmanager
def _quiet(nncf: Any) -> Iterator[None]:
    """NNCF logs INFO lines and draws progress bars on stdout; stdout belongs to the report
    (and `--json`), so NNCF gets warnings only and its bars go to stderr."""
    level = nncf.nncf_logger.level
    nncf.set_log_level(logging.WARNING)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        nncf.set_log_level(level)


def _write_int8(
    ov: Any,
    model: Any,
    manifest: ArtifactManifest,
    fp32_xml: Path,
    folder: Path,
    precision: str,
) -> None:
    """Save the IR and its manifest through a staging folder (never a half-written artifact)."""
    staging = folder.with_name(f".{folder.name}-staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    int8 = manifest.model_copy(
        update={
            "precision": "int8",
            "runtime_hints": {PRECISION_HINT: precision},
            "source_checkpoint": manifest.source_checkpoint or str(fp32_xml),
        }
    )
    ov.save_model(model, str(staging / OPENVINO_FILE), compress_to_fp16=False)
    int8.write(staging)
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)


def _record_metrics(folder: Path, metric: str, fp32: float, int8: float) -> None:
    manifest = ArtifactManifest.read(folder / MANIFEST_FILE)
    values = {**manifest.metrics, f"{metric}_fp32": fp32, f"{metric}_int8": int8}
    manifest.model_copy(update={"metrics": values}).write(folder)


def _evaluate(
    xml: Path, validation: _Validation, options: QuantizeOptions, progress: ProgressCallback | None
) -> PrecisionResult:
    """Metric on every validation image, then batch-1 latency end to end, with the artifact's
    own precision hint (f32 for FP32 exports)."""
    predictor = load_predictor(xml, "openvino", threads=options.threads)
    predictor.settings = EVAL_SETTINGS
    predictions = []
    for index, path in enumerate(validation.data.validation_images):
        (detections,) = predictor.predict_arrays([_read_bgr(path)])
        predictions.append(_as_predictions(detections.boxes_xyxy, detections.scores,
                                           detections.labels, detections.masks))  # fmt: skip
        report(
            progress, ProgressEvent(f"validate {xml.parent.name}", index + 1, len(validation.items))
        )
    evaluation = validation.score(predictions, range(len(predictions)))
    median, p95 = _latency(predictor, validation.data.validation_images[:4], options)
    manifest = predictor.manifest
    return PrecisionResult(
        artifact=str(xml),
        weights_precision=manifest.precision,
        inference_precision=predictor.backend.info.get("precision", "fp32"),
        metric=validation.value(evaluation),
        box=evaluation.overall.box,
        mask=evaluation.overall.mask,
        latency_ms=median,
        latency_p95_ms=p95,
    )


def _latency(
    predictor: Predictor, paths: Sequence[Path], options: QuantizeOptions
) -> tuple[float, float]:
    """(median, p95) ms end to end (pre, inference, post) at the deployment threshold."""
    predictor.settings = PostprocessSettings(conf=predictor.manifest.threshold)
    images = [_read_bgr(p) for p in paths]
    timings = []
    for run in range(options.warmup + options.timing_runs):
        started = time.perf_counter()
        predictor.predict_arrays([images[run % len(images)]])
        if run >= options.warmup:
            timings.append((time.perf_counter() - started) * 1000)
    return float(np.median(timings)), float(np.percentile(timings, 95))


def _read_bgr(path: Path) -> np.ndarray:
    """A dataset image as BGR, decoded as training decodes it (`cv2.imread` also recovers the
    slightly truncated JPEGs real datasets contain, which `cv2.imdecode` rejects)."""
    return cv2.cvtColor(read_image_rgb(path), cv2.COLOR_RGB2BGR)
