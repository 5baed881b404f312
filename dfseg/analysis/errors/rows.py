"""Rows of `errors.csv`: one per false positive and per false negative, at the threshold."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dfseg.analysis.errors.tide import MISSED, PREDICTION_OUTCOMES, ErrorCases
from dfseg.analysis.tables import Cell
from dfseg.metrics import ImageGroundTruth, ImagePredictions

ERROR_COLUMNS = (
    "image", "iou_type", "error_type", "side", "class", "object_class", "score", "iou",
    "x1", "y1", "x2", "y2",
)  # fmt: skip
"""`side` is false_positive or false_negative; `class` is the predicted class of a false positive
and the true class of a false negative; `object_class` the class of the object the error refers
to (empty when none); `iou` the overlap with it; x1..y2 the box in original pixels. An unfound
object that a classification or localization error points at is listed with that error's type."""


def error_rows(
    cases: ErrorCases,
    ground_truths: Sequence[ImageGroundTruth],
    predictions: Sequence[ImagePredictions],
    image_paths: Sequence[Path],
    class_names: Sequence[str],
) -> list[dict[str, Cell]]:
    """The CSV rows of one iou type, false positives first, each in dataset order."""
    rows: list[dict[str, Cell]] = []
    for flat in cases.false_positive.nonzero()[0]:
        image, row = int(cases.pred_image[flat]), int(cases.pred_row[flat])
        pred, gt = predictions[image], ground_truths[image]
        target = int(cases.pred_target[flat])
        rows.append(
            _row(
                image_paths[image],
                cases.iou_type,
                PREDICTION_OUTCOMES[cases.pred_outcome[flat]],
                "false_positive",
                class_names[int(pred.labels[row])],
                class_names[int(gt.labels[target])] if target >= 0 else None,
                float(pred.scores[row]),
                float(cases.pred_target_iou[flat]),
                pred.boxes_xyxy[row].tolist(),
            )
        )
    for flat in cases.false_negative.nonzero()[0]:
        image, row = int(cases.gt_image[flat]), int(cases.gt_row[flat])
        gt = ground_truths[image]
        error_type = "missed"
        if cases.gt_outcome[flat] != MISSED:
            error_type = PREDICTION_OUTCOMES[cases.pred_outcome[cases.gt_fixed_by[flat]]]
        name = class_names[int(gt.labels[row])]
        rows.append(
            _row(
                image_paths[image],
                cases.iou_type,
                error_type,
                "false_negative",
                name,
                name,
                None,
                None,
                gt.boxes_xyxy[row].tolist(),
            )
        )
    return rows


def _row(
    image: Path,
    iou_type: str,
    error_type: str,
    side: str,
    class_name: str,
    object_class: str | None,
    score: float | None,
    iou: float | None,
    box_xyxy: list[float],
) -> dict[str, Cell]:
    values: list[Cell] = [
        str(image), iou_type, error_type, side, class_name, object_class, score, iou, *box_xyxy,
    ]  # fmt: skip
    return dict(zip(ERROR_COLUMNS, values, strict=True))
