"""`run_bench`: accuracy and latency of every artifact of a run, against torch FP32.

Each configuration predicts the whole split with no confidence threshold (top 100 per image, as
mAP needs), is evaluated at the run's tuned threshold for P/R/F1, then timed at batch 1 with its
deployment settings on real split images after warm-up. Semantic models are scored on their
class maps in original pixels (mIoU, mPA, mean precision, pixel accuracy; mIoU is compared). A
configuration that cannot run is a row with status "failed" and the reason, never an aborted
benchmark.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from dfseg.analysis.bench.plot import plot_latency_accuracy
from dfseg.analysis.bench.report import (
    BenchReport,
    BenchRow,
    DropMetric,
    Status,
    write_bench_csv,
)
from dfseg.analysis.bench.targets import BenchTarget, find_bench_targets
from dfseg.analysis.latency import measure_latency
from dfseg.analysis.predict import evaluate_semantic_artifact, predict_for_evaluation
from dfseg.analysis.split_data import SplitImages, split_images_for
from dfseg.config import ProjectConfig
from dfseg.config.deploy import BenchConfig
from dfseg.data.image_reader import read_image_rgb
from dfseg.metrics import EvalReport, ImagePredictions, build_eval_report
from dfseg.metrics.plots import plot_prediction_grid
from dfseg.metrics.semantic import SemanticScores
from dfseg.nn.trained import read_checkpoint_manifest
from dfseg.runtime.images import read_image_bgr
from dfseg.runtime.predictor import Predictor, load_predictor
from dfseg.runtime.tiling import TileSettings, describe_tiling
from dfseg.structures.progress import ProgressCallback, ProgressEvent, report
from dfseg.structures.run_folders import create_numbered_dir
from dfseg.structures.run_layout import RunFolder

BENCH_CSV = "bench.csv"
PLOT_FILE = "latency_accuracy.png"
PREDICTIONS_DIR = "predictions"
LATENCY_IMAGES = 8  # distinct images cycled through by the timed runs


@dataclass(frozen=True)
class BenchSettings:
    """Options of `run_bench`.

    Attributes:
        warmup: untimed runs before timing; runs: timed batch-1 runs.
        threads: CPU threads per backend (None: the backend's default, all cores).
        metric: the metric compared against torch FP32 ("map50_95", "map50", "f1"); masks for
            segmentation models.
        max_drop: a larger drop makes the row "validation_failed" (None: no limit).
        devices: "cpu" and/or "cuda".
        prediction_images: images drawn per configuration (0: none).
        tiling: predict (and time) every configuration tile by tile; None: whole images.
    """

    warmup: int = 5
    runs: int = 30
    threads: int | None = None
    metric: DropMetric = "map50_95"
    max_drop: float | None = None
    devices: tuple[str, ...] = ("cpu",)
    prediction_images: int = 4
    tiling: TileSettings | None = None


def bench_settings(section: BenchConfig | None, **overrides: object) -> BenchSettings:
    """`BenchSettings` from a project's `bench:` section (defaults when None), with keyword
    overrides (None values ignored), as `dfseg bench` merges its options."""
    values: dict[str, object] = {}
    if section is not None:
        values = {
            "warmup": section.warmup, "runs": section.runs, "threads": section.threads,
            "max_drop": section.max_drop,
        }  # fmt: skip
    values.update({key: value for key, value in overrides.items() if value is not None})
    if "devices" in values:
        values["devices"] = tuple(values["devices"])  # type: ignore[arg-type]
    return BenchSettings(**values)  # type: ignore[arg-type]


def bench_run(
    run: RunFolder,
    project: ProjectConfig,
    settings: BenchSettings,
    progress: ProgressCallback | None = None,
) -> BenchReport:
    """`dfseg bench` of a run: its project's bench split (`bench.split`, `bench.max_images`) and
    tuned threshold, results in a new `<run>/bench[-N]` folder."""
    section = project.bench
    if project.project.task == "semantic":  # one metric: mIoU over the class maps
        settings = replace(settings, metric="miou")
    split = split_images_for(project, section.split, section.max_images)
    threshold = read_checkpoint_manifest(run.best).threshold
    out_dir = create_numbered_dir(run.path, "bench")
    return run_bench(run, split, out_dir, settings, threshold, progress)


def run_bench(
    run: RunFolder,
    split: SplitImages,
    out_dir: Path,
    settings: BenchSettings,
    threshold: float,
    progress: ProgressCallback | None = None,
) -> BenchReport:
    """Benchmark the run's checkpoint and exports (see the module docstring).

    Args:
        run: the training run (best.pt, export/).
        split: the images and ground truth to measure accuracy on.
        out_dir: an existing empty folder for bench.csv, the plot and prediction images.
        settings: timing and judging options.
        threshold: the run's tuned confidence threshold.
        progress: optional callback.
    """
    images_bgr = [read_image_bgr(p) for p in split.image_paths[:LATENCY_IMAGES]]
    targets = find_bench_targets(run, settings.devices)
    rows = []
    for index, target in enumerate(targets):
        message = f"[{index + 1}/{len(targets)}] {target.name}"
        report(progress, ProgressEvent("bench", index, len(targets), message=message))
        rows.append(_bench_one(target, split, images_bgr, out_dir, settings, threshold, progress))
    result = BenchReport(
        run_dir=str(run.path),
        split=split.name,
        images=len(split.annotations),
        threshold=threshold,
        metric=settings.metric,
        metric_group=_metric_group(rows),
        max_drop=settings.max_drop,
        tiling=None if settings.tiling is None else describe_tiling(settings.tiling),
        rows=_judged(rows, targets, settings),
        out_dir=str(out_dir),
    )
    write_bench_csv(result, out_dir / BENCH_CSV)
    plot_latency_accuracy(result, out_dir / PLOT_FILE)
    return result


def _bench_one(
    target: BenchTarget,
    split: SplitImages,
    images_bgr: Sequence[np.ndarray],
    out_dir: Path,
    settings: BenchSettings,
    threshold: float,
    progress: ProgressCallback | None,
) -> BenchRow:
    row = BenchRow(
        name=target.name,
        format=target.format,
        weights_precision=target.weights_precision,
        backend=target.backend,
        device=target.device,
        artifact=None if target.artifact is None else str(target.artifact),
        size_mb=target.size_mb,
    )
    if target.problem is not None or target.artifact is None:
        return row.model_copy(update={"status": "failed", "reason": target.problem})
    try:
        predictor = load_predictor(
            target.artifact, target.backend, target.device, threads=settings.threads,
            precision=target.inference_precision, tiling=settings.tiling,
        )  # fmt: skip
        if predictor.task == "semantic":
            return _bench_semantic(
                predictor, target, row, split, images_bgr, out_dir, settings, progress
            )
        predictions = predict_for_evaluation(predictor, split.image_paths, progress, target.name)
        evaluation = build_eval_report(
            split.ground_truths, predictions, split.class_names, threshold=threshold
        )
        latency = measure_latency(predictor, images_bgr, settings.warmup, settings.runs)
    except Exception as exc:  # a configuration that cannot run is a result, not a crash
        return row.model_copy(update={"status": "failed", "reason": _reason(exc)})
    _draw_predictions(predictor, split, predictions, out_dir, target.name, settings, threshold)
    measured = row.model_copy(
        update={
            "inference_precision": predictor.backend.info.get("precision"),
            "box": evaluation.overall.box,
            "mask": evaluation.overall.mask,
            "metric": _metric(evaluation, settings.metric),
            "latency": latency,
        }
    )
    if target.check_failure is None:
        return measured
    reason = target.check_failure[:300]
    return measured.model_copy(update={"status": "validation_failed", "reason": reason})


def _bench_semantic(
    predictor: Predictor,
    target: BenchTarget,
    row: BenchRow,
    split: SplitImages,
    images_bgr: Sequence[np.ndarray],
    out_dir: Path,
    settings: BenchSettings,
    progress: ProgressCallback | None,
) -> BenchRow:
    evaluation = evaluate_semantic_artifact(predictor, split.annotations, progress, target.name)
    latency = measure_latency(predictor, images_bgr, settings.warmup, settings.runs)
    _draw_class_maps(predictor, split, out_dir, target.name, settings)
    scores = SemanticScores.of(evaluation)
    measured = row.model_copy(
        update={
            "inference_precision": predictor.backend.info.get("precision"),
            "semantic": scores,
            "metric": evaluation.miou,
            "latency": latency,
        }
    )
    if target.check_failure is None:
        return measured
    reason = target.check_failure[:300]
    return measured.model_copy(update={"status": "validation_failed", "reason": reason})


def _draw_class_maps(
    predictor: Predictor, split: SplitImages, out_dir: Path, name: str, settings: BenchSettings
) -> None:
    """The first images' predicted class maps over the images, side by side, 256 px high."""
    import cv2

    count = min(settings.prediction_images, len(split.image_paths))
    if count == 0:
        return
    tiles = []
    for path in split.image_paths[:count]:
        image = read_image_bgr(path)
        (detections,) = predictor.predict_arrays([image])
        drawn = detections.plot(image)
        height, width = drawn.shape[:2]
        tiles.append(cv2.resize(drawn, (max(1, round(width * 256 / height)), 256)))
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")
    target = out_dir / PREDICTIONS_DIR / f"{slug}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(target), np.hstack(tiles))


def _metric_group(rows: Sequence[BenchRow]) -> Literal["box", "mask", "semantic"]:
    if any(row.semantic is not None for row in rows):
        return "semantic"
    return "mask" if any(row.mask is not None for row in rows) else "box"


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _metric(evaluation: EvalReport, metric: DropMetric) -> float:
    return float(getattr(evaluation.primary, metric))


def _judged(
    rows: list[BenchRow], targets: Sequence[BenchTarget], settings: BenchSettings
) -> list[BenchRow]:
    """Fill `drop` against the torch FP32 CPU row and mark rows beyond `max_drop`."""
    reference = next(
        (
            r.metric
            for r, t in zip(rows, targets, strict=True)
            if t.is_reference and r.status == "ok"
        ),
        None,
    )
    return [_judge(row, reference, settings) for row in rows]


def _judge(row: BenchRow, reference: float | None, settings: BenchSettings) -> BenchRow:
    if row.metric is None:
        return row
    drop = None if reference is None else reference - row.metric
    if row.status != "ok":  # already judged: its export failed the parity check
        return row.model_copy(update={"drop": drop})
    status: Status = row.status
    reason = row.reason
    if not np.isfinite(row.metric):
        status, reason = "validation_failed", f"{settings.metric} is undefined (NaN)"
    elif settings.max_drop is not None and drop is not None and drop > settings.max_drop:
        status = "validation_failed"
        reason = f"{settings.metric} dropped {drop:.4f} > {settings.max_drop} against torch FP32"
    return row.model_copy(update={"drop": drop, "status": status, "reason": reason})


def _draw_predictions(
    predictor: Predictor,
    split: SplitImages,
    predictions: list[ImagePredictions],
    out_dir: Path,
    name: str,
    settings: BenchSettings,
    threshold: float,
) -> None:
    count = min(settings.prediction_images, len(predictions))
    if count == 0:
        return
    images = [read_image_rgb(p) for p in split.image_paths[:count]]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")
    plot_prediction_grid(
        images, split.ground_truths[:count], predictions[:count], predictor.class_names,
        out_dir / PREDICTIONS_DIR / f"{slug}.png", confidence_threshold=threshold,
        titles=[p.name for p in split.image_paths[:count]],
    )  # fmt: skip
