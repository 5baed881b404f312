"""Precision-recall curves and precision/recall/F1 against the confidence threshold."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from matplotlib.axes import Axes

from dfseg.metrics.coco_result import CocoResult
from dfseg.metrics.errors import MetricsInputError
from dfseg.metrics.plots.canvas import new_figure, save_png
from dfseg.metrics.thresholds import Average, ThresholdMetrics

ConfidenceMetric = Literal["f1", "precision", "recall"]
MAX_CLASSES_IN_LEGEND = 20
_METRIC_LABELS: dict[str, str] = {"f1": "F1", "precision": "Precision", "recall": "Recall"}


def _class_line_style(num_classes: int) -> dict[str, Any]:
    """Thin coloured lines with a legend for a few classes, faint grey for many."""
    if num_classes <= MAX_CLASSES_IN_LEGEND:
        return {"linewidth": 1.0, "alpha": 0.8}
    return {"linewidth": 0.6, "color": "grey", "alpha": 0.4}


def _class_label(label: str, class_names: Sequence[str]) -> str:
    """Per-class legend entry, or none when there are too many classes to list."""
    return label if len(class_names) <= MAX_CLASSES_IN_LEGEND else "_nolegend_"


def _finish_axes(axes: Axes, x_label: str, y_label: str, title: str) -> None:
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)


def plot_pr_curves(
    result: CocoResult, class_names: Sequence[str], path: str | Path, iou: float = 0.5
) -> Path:
    """Interpolated precision vs recall per class and their mean, at one IoU threshold.

    Args:
        result: from `evaluate_coco` (area "all", largest maxDets are used).
        class_names: id -> name.
        path: PNG to write.
        iou: IoU threshold of the curves (must be one of the result's thresholds).
    """
    recall, precision = result.pr_curve(iou)  # [R], [K, R]
    ap = result.per_class_ap(iou=iou)  # [K]
    figure = new_figure(9, 6)
    axes = figure.add_subplot()
    style = _class_line_style(len(class_names))
    for k, name in enumerate(class_names):
        if np.isnan(precision[k]).all():
            continue
        axes.plot(
            recall, precision[k], label=_class_label(f"{name} {ap[k]:.3f}", class_names), **style
        )
    present = ~np.isnan(precision).all(axis=1)
    if present.any():
        mean_ap = float(np.nanmean(ap))
        axes.plot(
            recall, precision[present].mean(axis=0), color="tab:blue", linewidth=3,
            label=f"all classes {mean_ap:.3f} mAP@{iou:g}",
        )  # fmt: skip
    title = f"Precision-recall ({result.iou_type}, IoU {iou:g})"
    _finish_axes(axes, "Recall", "Precision", title)
    return save_png(figure, path)


def plot_confidence_curve(
    metrics: ThresholdMetrics,
    class_names: Sequence[str],
    path: str | Path,
    metric: ConfidenceMetric = "f1",
    average: Average = "micro",
    title: str = "",
) -> Path:
    """Precision, recall or F1 against the confidence threshold, per class and overall.

    Args:
        metrics: from `ConfidenceMatches.at(grid)`.
        class_names: id -> name.
        path: PNG to write.
        metric: which rate to draw.
        average: how the bold overall line combines classes.
        title: extra title text (e.g. "Box" or "Mask").
    """
    if metric not in _METRIC_LABELS:
        raise MetricsInputError(f"metric must be one of {list(_METRIC_LABELS)}, got {metric!r}")
    per_class = getattr(metrics.per_class, metric)  # [C, S]
    overall = getattr(metrics.overall(average), metric)  # [S]
    figure = new_figure(9, 6)
    axes = figure.add_subplot()
    style = _class_line_style(len(class_names))
    for k, name in enumerate(class_names):
        if metrics.num_instances[k] > 0:
            axes.plot(
                metrics.thresholds, per_class[k], label=_class_label(name, class_names), **style
            )
    label = _METRIC_LABELS[metric]
    if np.isfinite(overall).any():
        best = int(np.nanargmax(overall))
        axes.plot(
            metrics.thresholds, overall, color="tab:blue", linewidth=3,
            label=f"all ({average}) {overall[best]:.3f} at {metrics.thresholds[best]:.3f}",
        )  # fmt: skip
    heading = f"{label}-confidence" + (f" ({title})" if title else "")
    _finish_axes(axes, "Confidence", label, heading)
    return save_png(figure, path)
