"""`EvalReport`: the validation table (Ultralytics layout) and a flat row for results.csv.

One row per class plus an "all" row: Images, Instances, then P, R, F1, mAP50, mAP50-95 (and the
mean IoU of true positives) for boxes, and the same for masks when the model predicts them. P/R/F1
are taken at one confidence threshold (given, or the F1-best one: mask F1 for a segmentation
model, box F1 for a detector); mAP always uses the unfiltered predictions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from dfseg.config.tasks import GROUP_SUFFIXES, MetricGroup, Task, task_spec
from dfseg.metrics.coco import evaluate_coco
from dfseg.metrics.coco_result import CocoResult
from dfseg.metrics.collect import ProgressCallback
from dfseg.metrics.errors import MetricsInputError
from dfseg.metrics.inputs import ImageGroundTruth, ImagePredictions, as_predictions, check_inputs
from dfseg.metrics.iou import IouType
from dfseg.metrics.thresholds import (
    Average,
    ThresholdMetrics,
    best_threshold,
    match_for_thresholds,
)
from dfseg.structures.detections import Detections

ThresholdSource = Literal["given", "bbox", "segm", "fallback"]


class GroupMetrics(BaseModel):
    """Box (or mask) metrics of one class or of all classes. NaN where undefined (no GT); JSON
    writes NaN as the string "NaN" so that reports round-trip."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    precision: float
    recall: float
    f1: float
    map50: float
    map50_95: float
    mean_iou: float


class ClassRow(BaseModel):
    """One line of the validation table; `class_id` is None for the "all" row."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    class_id: int | None
    name: str
    images: int
    instances: int
    box: GroupMetrics
    mask: GroupMetrics | None = None


class EvalReport(BaseModel):
    """Validation results of one model on one split.

    Attributes:
        task: "segment" when mask metrics are present, else "detect" (`metric_groups`).
        threshold: confidence threshold of P/R/F1.
        threshold_source: "given", the metric whose F1 picked it ("bbox" or "segm"), or
            "fallback" when F1 was 0 at every confidence and the fallback threshold was kept.
        average: how "all" combines P/R/F1 over classes ("micro" pools counts).
        overall: the "all" row (images = all images, instances = all non-crowd objects).
        classes: one row per class id, in order (classes without ground truth have NaN recall/mAP).
        coco: per iou_type, the 12 COCO summary numbers ("AP", "AP50", ... "ARl"; -1 undefined).
        mask_instances_left_out: objects labelled with a box only, which the mask metrics leave
            out (ignore regions there); the box metrics count them.
    """

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    task: Task
    threshold: float
    threshold_source: ThresholdSource
    average: Literal["micro", "macro"]
    overall: ClassRow
    classes: list[ClassRow]
    coco: dict[str, dict[str, float]]
    mask_instances_left_out: int = 0

    @property
    def metric_groups(self) -> tuple[MetricGroup, ...]:
        """The groups this report has ("box", and "mask" for segmentation)."""
        return task_spec(self.task).metric_groups

    def overall_group(self, group: MetricGroup) -> GroupMetrics:
        """The "all" row's metrics of one group."""
        metrics = self.overall.box if group == "box" else self.overall.mask
        if metrics is None:
            raise MetricsInputError(f"this {self.task} report has no {group} metrics")
        return metrics

    @property
    def primary(self) -> GroupMetrics:
        """The "all" metrics of the task's own output (masks for segmentation, else boxes)."""
        return self.overall_group(task_spec(self.task).decision_group)

    def to_row(self) -> dict[str, float]:
        """Flat dict for results.csv; the columns depend only on the task, never on the data."""
        row: dict[str, float] = {}
        for name in self.metric_groups:
            suffix, group = GROUP_SUFFIXES[name], self.overall_group(name)
            row[f"metrics/precision({suffix})"] = group.precision
            row[f"metrics/recall({suffix})"] = group.recall
            row[f"metrics/f1({suffix})"] = group.f1
            row[f"metrics/mAP50({suffix})"] = group.map50
            row[f"metrics/mAP50-95({suffix})"] = group.map50_95
            row[f"metrics/mean_iou({suffix})"] = group.mean_iou
        row["metrics/conf_threshold"] = self.threshold
        return row

    def class_table(self) -> list[dict[str, float | int | str]]:
        """One flat dict per class (and "all" first), for a per-class CSV."""
        table = []
        for row in [self.overall, *self.classes]:
            flat: dict[str, float | int | str] = {
                "class": row.name, "images": row.images, "instances": row.instances,
            }  # fmt: skip
            for suffix, group in (("B", row.box), ("M", row.mask)):
                if group is None:
                    continue
                for field, value in group.model_dump().items():
                    flat[f"{field}({suffix})"] = value
            table.append(flat)
        return table


class _GroupBuilder:
    """Fills `GroupMetrics` rows of one iou_type from its COCO result and threshold counts."""

    def __init__(self, coco: CocoResult, at: ThresholdMetrics, average: Average) -> None:
        self.per_class = at.per_class  # [C, 1]
        self.overall = at.overall(average)  # [1]
        self.ap50 = coco.per_class_ap(iou=0.5)  # [C]
        self.ap = coco.per_class_ap()  # [C]
        # pycocotools reports -1 when no class has ground truth; the table shows NaN instead.
        self.map50, self.map50_95 = (math.nan if v < 0 else v for v in (coco.map50, coco.map50_95))

    def row(self, class_id: int | None) -> GroupMetrics:
        rates = self.overall if class_id is None else self.per_class
        index = (0,) if class_id is None else (class_id, 0)
        return GroupMetrics(
            precision=float(rates.precision[index]),
            recall=float(rates.recall[index]),
            f1=float(rates.f1[index]),
            map50=self.map50 if class_id is None else float(self.ap50[class_id]),
            map50_95=self.map50_95 if class_id is None else float(self.ap[class_id]),
            mean_iou=float(rates.mean_iou[index]),
        )


def build_eval_report(
    ground_truths: Sequence[ImageGroundTruth],
    predictions: Sequence[ImagePredictions | Detections],
    class_names: Sequence[str],
    threshold: float | None = None,
    average: Average = "micro",
    progress: ProgressCallback | None = None,
    fallback_threshold: float = 0.5,
) -> EvalReport:
    """Evaluate a dataset and fill the report.

    Args:
        ground_truths: per image. predictions: per image, same order, unfiltered.
        class_names: id -> name; its length is the class count.
        threshold: confidence for P/R/F1; None picks the F1-best (masks when present).
        fallback_threshold: used instead when the search finds F1 0 at every confidence (no
            object matched yet); the report's `threshold_source` is then "fallback".
        average: "micro" or "macro" combination of P/R/F1 in the "all" row and the search.
        progress: optional progress(done, total) callback, per image of each evaluation pass.
    """
    preds = as_predictions(predictions)
    num_classes = check_inputs(ground_truths, preds, len(class_names))
    # masks are evaluated when the model predicts them, on the instances labelled with one
    with_masks = any(p.has_masks for p in preds)
    iou_types: list[IouType] = ["bbox", "segm"] if with_masks else ["bbox"]
    results = {
        t: evaluate_coco(ground_truths, preds, t, num_classes, progress=progress) for t in iou_types
    }
    matches = {
        t: match_for_thresholds(ground_truths, preds, t, num_classes=num_classes) for t in iou_types
    }
    source: ThresholdSource = "given"
    if threshold is None:
        best = best_threshold(matches[iou_types[-1]], average=average, fallback=fallback_threshold)
        source = iou_types[-1] if best.found else "fallback"
        threshold = best.threshold
    groups = {t: _GroupBuilder(results[t], matches[t].at(threshold), average) for t in iou_types}
    return EvalReport(
        task="segment" if with_masks else "detect",
        threshold=threshold,
        threshold_source=source,
        average=average,
        overall=_class_row(None, "all", len(ground_truths), results["bbox"], groups),
        classes=[
            _class_row(k, str(name), len(ground_truths), results["bbox"], groups)
            for k, name in enumerate(class_names)
        ],
        coco={t: results[t].summary() for t in iou_types},
        mask_instances_left_out=(
            sum(gt.masks_left_out for gt in ground_truths) if with_masks else 0
        ),
    )


def _class_row(
    class_id: int | None,
    name: str,
    num_images: int,
    box_coco: CocoResult,
    groups: dict[IouType, _GroupBuilder],
) -> ClassRow:
    """One table line; images/instances count non-crowd objects (from the box evaluation)."""
    if class_id is None:
        images, instances = num_images, int(box_coco.num_instances.sum())
    else:
        images = int(box_coco.num_images_with_class[class_id])
        instances = int(box_coco.num_instances[class_id])
    return ClassRow(
        class_id=class_id,
        name=name,
        images=images,
        instances=instances,
        box=groups["bbox"].row(class_id),
        mask=groups["segm"].row(class_id) if "segm" in groups else None,
    )
