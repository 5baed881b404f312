"""`analyze_errors`: TIDE error types with their dAP, the images with the most errors, the gallery,
`errors.csv` and a summary plot, for boxes and (segmentation models) masks.

Two views of the same predictions:
- dAP uses every prediction (unfiltered, as mAP does): what each error type costs in AP.
- Counts, the gallery, the CSV and the worst-images list use the predictions at the deployment
  confidence threshold: the mistakes a user of the model actually sees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from dfseg.analysis.errors.gallery import image_error_counts, write_gallery
from dfseg.analysis.errors.mislabels import (
    MISLABEL_DIR,
    default_min_score,
    draw_mislabel_candidates,
    find_mislabel_candidates,
)
from dfseg.analysis.errors.plot import plot_error_summary
from dfseg.analysis.errors.report import (
    ErrorGroup,
    ErrorSettings,
    ErrorsReport,
    ErrorTypeRow,
    ImageErrors,
)
from dfseg.analysis.errors.rows import ERROR_COLUMNS, error_rows
from dfseg.analysis.errors.tide import ERROR_TYPES, classify_errors
from dfseg.analysis.errors.tide_fix import error_ap_deltas
from dfseg.analysis.exceptions import AnalysisError
from dfseg.analysis.tables import write_csv
from dfseg.metrics import ImageGroundTruth, ImagePredictions
from dfseg.structures.progress import ProgressCallback, ProgressEvent, report

IouType = Literal["bbox", "segm"]
ERRORS_CSV = "errors.csv"
SUMMARY_PLOT = "error_summary.png"
GALLERY_DIR = "gallery"


def analyze_errors(
    ground_truths: Sequence[ImageGroundTruth],
    predictions: Sequence[ImagePredictions],
    image_paths: Sequence[Path],
    class_names: Sequence[str],
    out_dir: Path,
    settings: ErrorSettings,
    split: str = "val",
    progress: ProgressCallback | None = None,
) -> ErrorsReport:
    """Classify, quantify and draw the errors of a model on a split.

    Args:
        ground_truths: per image, original pixels (masks for a segmentation model).
        predictions: per image, unfiltered (top 100), same pixels.
        image_paths: per image, for the gallery and the lists.
        class_names: id -> name.
        out_dir: an existing, empty folder for the outputs.
        settings: thresholds and limits.
        split: the split's name, for the report.
        progress: optional callback.
    """
    threshold = _checked_threshold(ground_truths, predictions, image_paths, settings)
    num_classes = len(class_names)
    iou_types = _iou_types(ground_truths, predictions)
    shown = [above_threshold(p, threshold) for p in predictions]
    groups, rows = [], []
    for iou_type in iou_types:
        # mask errors are those of the instances labelled with a mask (box-only ones: ignored)
        evaluated = [gt.for_iou_type(iou_type) for gt in ground_truths]
        deltas = error_ap_deltas(
            evaluated, predictions, num_classes, iou_type, settings.dap_metric,
            settings.background_threshold, progress,
        )  # fmt: skip
        cases = classify_errors(
            evaluated, shown, iou_type, settings.iou_threshold,
            settings.background_threshold, num_classes,
        )  # fmt: skip
        groups.append(_group(deltas.ap, deltas.delta, cases.counts(), iou_type, settings))
        rows += error_rows(cases, evaluated, shown, image_paths, class_names)
    # `cases` is the last iou type's: masks for a segmentation model, else boxes.
    report(progress, ProgressEvent("gallery", 0, None, message="drawing the error gallery"))
    written = write_gallery(
        cases, evaluated, shown, image_paths, class_names, out_dir / GALLERY_DIR,
        settings.gallery_limit,
    )  # fmt: skip
    min_score = settings.mislabel_score
    if min_score is None:
        min_score = default_min_score(threshold)
    candidates = find_mislabel_candidates(
        cases, evaluated, shown, image_paths, class_names, min_score, settings.mislabel_limit
    )
    draw_mislabel_candidates(candidates, evaluated, image_paths, out_dir / MISLABEL_DIR)
    write_csv(out_dir / ERRORS_CSV, ERROR_COLUMNS, rows)
    per_image = image_error_counts(cases, len(image_paths))
    result = ErrorsReport(
        split=split,
        images=len(image_paths),
        confidence_threshold=threshold,
        iou_threshold=settings.iou_threshold,
        background_threshold=settings.background_threshold,
        groups=groups,
        gallery_iou_type=iou_types[-1],
        worst_images=_worst_images(per_image, image_paths, settings.worst_images),
        out_dir=str(out_dir),
        gallery_images=len(written),
        mislabel_min_score=min_score,
        mislabel_candidates=candidates,
    )
    plot_error_summary(result, out_dir / SUMMARY_PLOT)
    return result


def _checked_threshold(
    ground_truths: Sequence[ImageGroundTruth],
    predictions: Sequence[ImagePredictions],
    image_paths: Sequence[Path],
    settings: ErrorSettings,
) -> float:
    if not len(ground_truths) == len(predictions) == len(image_paths):
        raise AnalysisError(
            f"{len(ground_truths)} ground truths, {len(predictions)} predictions and "
            f"{len(image_paths)} image paths; give one of each per image"
        )
    threshold = settings.confidence_threshold
    if threshold is None or not 0 <= threshold <= 1:
        raise AnalysisError(f"confidence_threshold must be in [0, 1], got {threshold}")
    return threshold


def _iou_types(
    ground_truths: Sequence[ImageGroundTruth], predictions: Sequence[ImagePredictions]
) -> list[IouType]:
    """Boxes always; masks too when the model predicts them and some labels have outlines."""
    with_masks = any(p.has_masks for p in predictions) and any(
        g.known_masks.any() for g in ground_truths
    )
    return ["bbox", "segm"] if with_masks else ["bbox"]


def above_threshold(prediction: ImagePredictions, threshold: float) -> ImagePredictions:
    """The predictions scored >= threshold (masks kept as RLE)."""
    keep = np.flatnonzero(prediction.scores >= threshold)
    return ImagePredictions(
        boxes_xyxy=prediction.boxes_xyxy[keep],
        scores=prediction.scores[keep],
        labels=prediction.labels[keep],
        masks=None if prediction.masks is None else [prediction.rles[i] for i in keep],
        where=prediction.where,
    )


def _group(
    ap: float,
    delta: dict[str, float],
    counts: Mapping[str, int],
    iou_type: str,
    settings: ErrorSettings,
) -> ErrorGroup:
    return ErrorGroup(
        iou_type=iou_type,
        metric=settings.dap_metric,
        ap=ap,
        rows=[ErrorTypeRow(error_type=t, count=counts[t], dap=delta[t]) for t in ERROR_TYPES],
        false_positives_dap=delta["false_positives"],
        false_negatives_dap=delta["false_negatives"],
    )


def _worst_images(counts: np.ndarray, image_paths: Sequence[Path], top: int) -> list[ImageErrors]:
    """The `top` images by error count ([I, T] counts), most first, only those with errors."""
    totals = counts.sum(1)  # [I]
    order = np.argsort(-totals, kind="stable")[:top]
    return [
        ImageErrors(
            image=str(image_paths[i]),
            errors=int(totals[i]),
            counts={t: int(n) for t, n in zip(ERROR_TYPES, counts[i], strict=True) if n},
        )
        for i in order
        if totals[i] > 0
    ]
