"""`dfseg quantize`: OpenVINO INT8 with NNCF, always validated against FP32.

    report = quantize_run(run, project, quantize_options(project.export.quantize, mode="basic"))

The INT8 model is evaluated on the validation images beside the FP32 one (the metric at the
run's threshold, latency end to end at batch 1) through the same evaluation path as `dfseg
bench` (`dfseg.analysis.predict`), and the report holds both: INT8 never silently loses
accuracy. The report is also saved beside the INT8 artifact (`quantize.json`), so that `dfseg
bench` marks an artifact beyond the allowed drop. FP32 is validated with an f32 hint (the
reference), INT8 with its own hint (what users run). NNCF's accuracy control evaluates its
candidates with the same function.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dfseg.analysis.exceptions import AnalysisError
from dfseg.analysis.latency import measure_latency
from dfseg.analysis.predict import evaluate_semantic_artifact, predict_for_evaluation
from dfseg.analysis.split_data import SplitImages, split_images_for
from dfseg.config import ProjectConfig
from dfseg.config.choices import QuantizeScope
from dfseg.config.deploy import QuantizeConfig
from dfseg.config.errors import describe_validation_error
from dfseg.export.errors import ExportError
from dfseg.export.quantize import (
    INT8_FOLDER,
    QuantizeSpec,
    ensure_openvino_fp32,
    quantize_ir,
    record_metrics,
    write_int8_artifact,
)
from dfseg.metrics import EvalReport, GroupMetrics, build_eval_report
from dfseg.metrics.semantic import SemanticReport, SemanticScores
from dfseg.runtime.backends.base import BackendOptions
from dfseg.runtime.backends.openvino_backend import OpenVinoBackend, openvino_core
from dfseg.runtime.images import read_image_bgr
from dfseg.runtime.postprocess import EVAL_SETTINGS
from dfseg.runtime.predictor import Predictor, load_predictor
from dfseg.runtime.preprocess import preprocess_image
from dfseg.structures.manifest import MANIFEST_FILE, ArtifactManifest
from dfseg.structures.progress import ProgressCallback, ProgressEvent, report
from dfseg.structures.run_layout import RunFolder

QuantizeMetric = Literal["f1", "map50_95", "map50", "miou"]
QUANTIZE_REPORT_FILE = "quantize.json"
LATENCY_IMAGES = 4


class QuantizeOptions(BaseModel):
    """How to quantize (defaults mirror the project's `export.quantize` section).

    Attributes:
        mode: "basic" (nncf.quantize) or "accuracy" (nncf.quantize_with_accuracy_control).
        max_drop: largest allowed absolute drop of `metric` (accuracy mode: the target; both
            modes: the pass/fail line of the report).
        metric: "f1" (at the run's threshold), "map50_95" or "map50"; of masks for segmentation;
            "miou" for (and only for) semantic models.
        calibration_images: calibration subset size (train images).
        preset: NNCF preset: "mixed" (asymmetric activations) or "performance" (symmetric).
        transformer: tell NNCF the model has attention blocks (ModelType.TRANSFORMER).
        scope: what may become INT8 (`dfseg.export.quantize.SCOPE_PATTERNS`); "backbone"
            (the decoder in floating point) measured fastest and closest to FP32 (README).
            Semantic models have no decoder: they are quantized with "all".
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
    scope: QuantizeScope = "backbone"
    int8_precision: Literal["fp32", "default"] = "fp32"
    threads: int | None = Field(None, gt=0)
    warmup: int = Field(3, ge=0)
    timing_runs: int = Field(20, gt=0)
    force: bool = False


def quantize_options(section: QuantizeConfig | None, **overrides: object) -> QuantizeOptions:
    """`QuantizeOptions` from a project's `export.quantize` section (defaults when None), with
    keyword overrides (None values ignored), as `dfseg quantize` merges its options."""
    base: dict[str, object] = {} if section is None else section.model_dump()
    base.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return QuantizeOptions.model_validate(base)
    except ValidationError as exc:
        raise AnalysisError(f"invalid quantize options: {describe_validation_error(exc)}") from None


@dataclass(frozen=True)
class QuantizeData:
    """Images for calibration (train split) and validation (a split with ground truth)."""

    calibration_images: list[Path]
    validation: SplitImages


class PrecisionResult(BaseModel):
    """One model's accuracy and speed on the validation images."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    artifact: str
    weights_precision: str
    inference_precision: str
    metric: float
    box: GroupMetrics | None = None
    mask: GroupMetrics | None = None
    semantic: SemanticScores | None = None
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
    scope: str = "all"
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

    @property
    def verdict(self) -> str:
        """One line: the drop against the allowed one."""
        where = "within" if self.passed else "beyond"
        return (
            f"INT8 {self.metric} drop {self.drop:+.4f} against FP32, {where} the allowed "
            f"{self.max_drop}"
        )

    @classmethod
    def read(cls, folder: Path) -> QuantizeReport | None:
        """The report saved beside an INT8 artifact; None when there is none or it is unreadable."""
        try:
            return cls.model_validate_json((folder / QUANTIZE_REPORT_FILE).read_text("utf-8"))
        except (OSError, ValueError):
            return None


def quantize_run(
    run: RunFolder,
    project: ProjectConfig,
    options: QuantizeOptions,
    progress: ProgressCallback | None = None,
) -> QuantizeReport:
    """Quantize the run's FP32 OpenVINO model (exported first when there is none): calibrate on
    the train split, validate on the val split."""
    if project.project.task == "semantic":  # the class maps' mIoU is what INT8 must keep
        options = options.model_copy(update={"metric": "miou"})
    elif options.metric == "miou":
        raise AnalysisError("metric miou is for semantic models; use f1, map50_95 or map50")
    train = split_images_for(project, "train")
    data = QuantizeData(train.image_paths, split_images_for(project, "val"))
    fp32 = ensure_openvino_fp32(run, options.threads, progress)
    return quantize_openvino(fp32, data, options, progress)


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
    if not data.calibration_images or not data.validation.annotations:
        raise ExportError("quantization needs calibration (train) and validation (val) images")
    manifest = ArtifactManifest.read(fp32_xml.parent / MANIFEST_FILE)
    folder = fp32_xml.parent.parent / INT8_FOLDER
    if folder.exists() and not options.force:
        raise ExportError(f"{folder} already exists; pass --force to replace it")
    validation = _Validation(data.validation, manifest, fp32_xml, options.metric)
    calibration = data.calibration_images[: options.calibration_images]
    scope = "all" if manifest.model.task == "semantic" else options.scope
    message = _plan(options, len(calibration), scope)
    report(progress, ProgressEvent("quantize", 0, None, message=message))
    spec = QuantizeSpec(options.mode, options.preset, options.transformer, options.max_drop, scope)
    quantized = quantize_ir(
        openvino_core().read_model(str(fp32_xml)), calibration, validation.model_input, spec,
        validation.items, validation.nncf_metric,
    )  # fmt: skip
    int8_xml = write_int8_artifact(quantized, manifest, fp32_xml, folder, options.int8_precision)
    report(progress, ProgressEvent("quantize", 0, None, message="validating FP32 and INT8"))
    fp32 = _evaluate(fp32_xml, validation, options, progress)
    int8 = _evaluate(int8_xml, validation, options, progress)
    drop = fp32.metric - int8.metric
    metric = options.metric
    record_metrics(folder, {f"{metric}_fp32": fp32.metric, f"{metric}_int8": int8.metric})
    result = QuantizeReport(
        mode=options.mode,
        metric=metric,
        max_drop=options.max_drop,
        preset=options.preset,
        scope=scope,
        calibration_requested=options.calibration_images,
        calibration_images=len(calibration),
        validation_images=len(validation.items),
        threshold=manifest.threshold,
        folder=str(folder),
        fp32=fp32,
        int8=int8,
        drop=drop,
        passed=bool(drop <= options.max_drop + 1e-12),
        seconds=round(time.perf_counter() - started, 1),
    )
    (folder / QUANTIZE_REPORT_FILE).write_text(result.model_dump_json(indent=2), "utf-8")
    return result


def _plan(options: QuantizeOptions, calibration: int, scope: str) -> str:
    target = f", max {options.metric} drop {options.max_drop}" if options.mode == "accuracy" else ""
    return (
        f"INT8 ({options.mode} mode{target}): calibrating on {calibration} images "
        f"(asked {options.calibration_images}), preset {options.preset}, scope {scope}"
    )


class _Validation:
    """The validation split, and the metric NNCF's accuracy control and the report use."""

    def __init__(
        self, split: SplitImages, manifest: ArtifactManifest, fp32_xml: Path, metric: str
    ) -> None:
        self.split = split
        self.manifest = manifest
        self.fp32_xml = fp32_xml
        self.metric = metric
        self.items = list(enumerate(split.image_paths))  # (index, path): NNCF takes subsets

    def model_input(self, item: Path | tuple[int, Path]) -> np.ndarray:
        """[1, 3, H, W] float32 input of a calibration path or a validation item."""
        path = item[1] if isinstance(item, tuple) else item
        return preprocess_image(read_image_bgr(path), self.manifest.preprocessing)[0][None]

    @property
    def semantic(self) -> bool:
        return self.manifest.model.task == "semantic"

    def measure(
        self,
        predictor: Predictor,
        indices: Sequence[int],
        progress: ProgressCallback | None = None,
        task: str = "predict",
    ) -> tuple[float, EvalReport | SemanticReport]:
        """The metric of `predictor` on the validation images `indices`, with its evaluation."""
        if self.semantic:
            annotations = [self.split.annotations[i] for i in indices]
            semantic = evaluate_semantic_artifact(predictor, annotations, progress, task)
            value = float(semantic.miou)
            return (value if np.isfinite(value) else 0.0), semantic
        paths = [self.split.image_paths[i] for i in indices]
        predictions = predict_for_evaluation(predictor, paths, progress, task)
        evaluation = self.score(predictions, indices)
        return self.value(evaluation), evaluation

    def score(self, predictions: list[Any], indices: Iterable[int]) -> EvalReport:
        ground_truths = [self.split.ground_truths[i] for i in indices]
        return build_eval_report(
            ground_truths, predictions, self.split.class_names, threshold=self.manifest.threshold
        )

    def value(self, evaluation: EvalReport) -> float:
        value = float(getattr(evaluation.primary, self.metric))
        return value if np.isfinite(value) else 0.0

    def nncf_metric(self, compiled: Any, items: Iterable[tuple[int, Path]]) -> float:
        """NNCF's validation_fn: the metric of a compiled candidate on (a subset of) the items."""
        chosen = list(items)
        backend = OpenVinoBackend(self.fp32_xml, self.manifest, BackendOptions(), compiled)
        predictor = Predictor(backend, EVAL_SETTINGS)
        return self.measure(predictor, [index for index, _ in chosen])[0]


def _evaluate(
    xml: Path, validation: _Validation, options: QuantizeOptions, progress: ProgressCallback | None
) -> PrecisionResult:
    """Metric on every validation image, then batch-1 latency end to end, with the artifact's
    own precision hint (f32 for FP32 exports)."""
    predictor = load_predictor(xml, "openvino", threads=options.threads)
    paths = validation.split.image_paths
    value, evaluation = validation.measure(
        predictor, range(len(paths)), progress, f"validate {xml.parent.name}"
    )
    images = [read_image_bgr(path) for path in paths[:LATENCY_IMAGES]]
    latency = measure_latency(predictor, images, options.warmup, options.timing_runs)
    metrics: dict[str, Any]
    if isinstance(evaluation, SemanticReport):
        metrics = {"semantic": SemanticScores.of(evaluation)}
    else:
        metrics = {"box": evaluation.overall.box, "mask": evaluation.overall.mask}
    return PrecisionResult(
        artifact=str(xml),
        weights_precision=predictor.manifest.precision,
        inference_precision=predictor.backend.info.get("precision", "fp32"),
        metric=value,
        **metrics,
        latency_ms=latency.total_ms,
        latency_p95_ms=latency.stages["total"].p95_ms,
    )
