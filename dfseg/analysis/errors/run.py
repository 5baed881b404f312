"""`run_error_analysis`: predict a split with a trained or exported model, then `analyze_errors`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from dfseg.analysis.errors.analyze import analyze_errors
from dfseg.analysis.errors.report import ErrorSettings, ErrorsReport
from dfseg.analysis.exceptions import AnalysisError
from dfseg.analysis.predict import predict_for_evaluation
from dfseg.analysis.split_data import SplitImages
from dfseg.runtime.predictor import load_predictor
from dfseg.structures.progress import ProgressCallback


def run_error_analysis(
    artifact: Path,
    split: SplitImages,
    out_dir: Path,
    settings: ErrorSettings,
    backend: str | None = None,
    threads: int | None = None,
    progress: ProgressCallback | None = None,
) -> ErrorsReport:
    """Error analysis of one model on one split.

    Args:
        artifact: best.pt, an exported model file or folder, or a run folder (its best.pt).
        split: images and ground truth.
        out_dir: an existing empty folder for the outputs.
        settings: thresholds; `confidence_threshold` None means the model's tuned one.
        backend: runtime backend (None: from the file type).
        threads: CPU inference threads (None: all).
        progress: optional callback.
    """
    predictor = load_predictor(artifact, backend, threads=threads)
    if predictor.task == "semantic":
        raise AnalysisError(
            f"{artifact} is a semantic model: `dfseg errors` analyses detections and does not "
            "take semantic models yet; `dfseg val` writes their per-class IoU and confusion "
            "matrix"
        )
    if settings.confidence_threshold is None:
        settings = dataclasses.replace(settings, confidence_threshold=predictor.manifest.threshold)
    predictions = predict_for_evaluation(predictor, split.image_paths, progress)
    return analyze_errors(
        split.ground_truths, predictions, split.image_paths, split.class_names, out_dir,
        settings, split.name, progress,
    )  # fmt: skip
