"""The chart of `dfseg check --plot`: instances per size range and class, and images by objects
per image (`dfseg.data.object_sizes`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dfseg.data.object_sizes import TINY_SIDE, ObjectSizeReport
from dfseg.metrics.plots.canvas import new_figure, save_png


def plot_object_sizes(report: ObjectSizeReport, path: Path) -> Path:
    """Two bar charts: instances per size range and class, and images by objects per image."""
    figure = new_figure(12, 4)
    sizes, per_image = figure.subplots(1, 2)
    names = [row.name for row in report.classes]
    positions = np.arange(len(names))
    for offset, (field, color) in enumerate(
        (("tiny", "#b30000"), ("small", "#e66101"), ("medium", "#5e3c99"), ("large", "#1b7837"))
    ):
        values = [getattr(row, field) for row in report.classes]
        sizes.bar(positions + (offset - 1.5) * 0.2, values, 0.2, label=field, color=color)
    sizes.set_xticks(positions, names, rotation=30, ha="right")
    height, width = report.input_hw
    sizes.set_title(f"instances by size at {width}x{height} (tiny: under {TINY_SIDE:g} px)")
    sizes.legend()
    per_image.bar(list(report.per_image), list(report.per_image.values()), color="#4477aa")
    per_image.set_title("images by objects per image")
    per_image.set_xlabel("objects")
    return save_png(figure, path)
