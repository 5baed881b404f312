"""Summary plot of `dfseg errors`: dAP and count per error type, for boxes and masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dfseg.analysis.errors.gallery import TYPE_COLORS_BGR
from dfseg.analysis.errors.report import ErrorsReport
from dfseg.metrics.plots.canvas import new_figure, save_png


def plot_error_summary(report: ErrorsReport, path: Path) -> Path:
    """Two horizontal bar charts per iou type: dAP (what fixing the type gains) and count."""
    figure = new_figure(10, 3 * len(report.groups))
    axes = figure.subplots(len(report.groups), 2, squeeze=False)
    for (dap_axes, count_axes), group in zip(axes, report.groups, strict=True):
        names = [row.error_type for row in group.rows]
        colors = [tuple(c / 255 for c in TYPE_COLORS_BGR[n][::-1]) for n in names]
        positions = np.arange(len(names))
        dap = [100 * row.dap for row in group.rows]
        dap_axes.barh(positions, np.nan_to_num(dap), color=colors)
        dap_axes.set_yticks(positions, names)
        dap_axes.invert_yaxis()
        kind = "boxes" if group.iou_type == "bbox" else "masks"
        metric = "AP50" if group.metric == "ap50" else "AP50-95"
        dap_axes.set_title(f"{kind}: dAP ({metric} {100 * group.ap:.1f})", fontsize="medium")
        dap_axes.set_xlabel(f"{metric} gained by fixing (points)")
        count_axes.barh(positions, [row.count for row in group.rows], color=colors)
        count_axes.set_yticks(positions, [])
        count_axes.invert_yaxis()
        count_axes.set_title(
            f"{kind}: cases at confidence {report.confidence_threshold:.2f}", fontsize="medium"
        )
        count_axes.set_xlabel("count")
    return save_png(figure, path)
