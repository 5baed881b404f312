"""The plots a run writes after training (matplotlib PNGs in the run folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from dfseg.config.tasks import GROUP_IOU_TYPES, task_spec
from dfseg.metrics import ImageGroundTruth, confusion_matrix, evaluate_coco, match_for_thresholds
from dfseg.structures import ImageAnnotation
from dfseg.training.evaluation import Evaluation

GRID_IMAGES = 16


def write_run_plots(
    run_dir: Path, evaluation: Evaluation, class_names: list[str], train: list[ImageAnnotation]
) -> dict[str, str]:
    """PR curves, F1/P/R vs confidence, confusion matrices, label distribution, a validation
    grid (ground truth green, predictions blue). Returns name -> path written."""
    from dfseg.metrics import plots

    primary = task_spec(evaluation.report.task).decision_group
    iou_type = GROUP_IOU_TYPES[primary]
    gts, preds = evaluation.ground_truths, evaluation.predictions
    written: dict[str, Path] = {}
    coco = evaluate_coco(gts, preds, iou_type, len(class_names))
    written["pr_curve"] = plots.plot_pr_curves(coco, class_names, run_dir / "PR_curve.png")
    grid = np.round(np.linspace(0.0, 1.0, 101), 3)
    rates = match_for_thresholds(gts, preds, iou_type, num_classes=len(class_names)).at(grid)
    curve_files: dict[Literal["f1", "precision", "recall"], str] = {
        "f1": "F1_curve.png",
        "precision": "P_curve.png",
        "recall": "R_curve.png",
    }
    for metric, filename in curve_files.items():
        written[f"{metric}_curve"] = plots.plot_confidence_curve(
            rates,
            class_names,
            run_dir / filename,
            metric=metric,
        )
    threshold = evaluation.report.threshold
    matrix = confusion_matrix(gts, preds, len(class_names), threshold, iou_type=iou_type)
    written["confusion_matrix"] = plots.plot_confusion_matrix(
        matrix, class_names, run_dir / "confusion_matrix.png"
    )
    written["confusion_matrix_normalized"] = plots.plot_confusion_matrix(
        matrix, class_names, run_dir / "confusion_matrix_normalized.png", normalize="true"
    )
    train_gts = [ImageGroundTruth.from_annotation(a) for a in train]
    written["labels"] = plots.plot_label_distribution(
        train_gts, class_names, run_dir / "labels.png"
    )
    written["val_predictions"] = _prediction_grid(run_dir, evaluation, class_names, threshold)
    return {name: str(path) for name, path in written.items()}


def _prediction_grid(
    run_dir: Path, evaluation: Evaluation, class_names: list[str], threshold: float
) -> Path:
    from dfseg.metrics import plots

    count = min(GRID_IMAGES, len(evaluation.annotations))
    images = []
    for annotation in evaluation.annotations[:count]:
        image = cv2.imread(str(annotation.image_path), cv2.IMREAD_COLOR)
        if image is None:  # unreadable now: draw on grey so the grid still lines up
            image = np.full((annotation.height, annotation.width, 3), 114, np.uint8)
        images.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    return plots.plot_prediction_grid(
        images,
        evaluation.ground_truths[:count],
        evaluation.predictions[:count],
        class_names,
        run_dir / "val_predictions.png",
        confidence_threshold=threshold,
        titles=[annotation.image_path.name for annotation in evaluation.annotations[:count]],
    )
