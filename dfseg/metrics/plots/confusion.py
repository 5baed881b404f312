"""Confusion matrix heat map (rows predicted class, columns true class, background last)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dfseg.metrics.confusion import ConfusionMatrix, NormalizeOver
from dfseg.metrics.errors import MetricsInputError
from dfseg.metrics.plots.canvas import new_figure, save_png

MAX_CLASSES_ANNOTATED = 30


def plot_confusion_matrix(
    matrix: ConfusionMatrix,
    class_names: Sequence[str],
    path: str | Path,
    normalize: NormalizeOver | None = None,
) -> Path:
    """Draw counts, or fractions normalised over true (columns) or predicted (rows) classes.

    Args:
        matrix: from `confusion_matrix`.
        class_names: id -> name (C entries; "background" is appended).
        path: PNG to write.
        normalize: None for counts, "true" or "predicted" for fractions.
    """
    if len(class_names) != matrix.num_classes:
        raise MetricsInputError(
            f"{len(class_names)} class names for a {matrix.num_classes}-class confusion matrix"
        )
    values = matrix.counts.astype(np.float64) if normalize is None else matrix.normalized(normalize)
    labels = [*class_names, "background"]
    size = min(max(6.0, 0.45 * len(labels) + 3), 30.0)
    figure = new_figure(size + 1.5, size)
    axes = figure.add_subplot()
    image = axes.imshow(values, cmap="Blues", vmin=0, vmax=max(float(values.max()), 1e-9))
    figure.colorbar(image, ax=axes, shrink=0.8)
    ticks = np.arange(len(labels))
    axes.set_xticks(ticks, labels, rotation=90, fontsize="small")
    axes.set_yticks(ticks, labels, fontsize="small")
    axes.set_xlabel("True")
    axes.set_ylabel("Predicted")
    kind = "counts" if normalize is None else f"normalised over {normalize} class"
    axes.set_title(
        f"Confusion matrix ({kind}; conf >= {matrix.confidence_threshold:g}, "
        f"IoU >= {matrix.iou_threshold:g})"
    )
    if len(labels) <= MAX_CLASSES_ANNOTATED:
        _annotate(axes, values, integer=normalize is None)
    return save_png(figure, path)


def _annotate(axes: object, values: np.ndarray, integer: bool) -> None:
    """Write each non-zero cell's value, white on dark cells."""
    threshold = 0.5 * float(values.max()) if values.size else 0.0
    for row, col in zip(*np.nonzero(values), strict=True):
        value = values[row, col]
        text = f"{int(value)}" if integer else f"{value:.2f}"
        axes.text(  # type: ignore[attr-defined]
            col, row, text, ha="center", va="center", fontsize="x-small",
            color="white" if value > threshold else "black",
        )  # fmt: skip
