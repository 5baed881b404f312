"""Latency-vs-accuracy scatter of `dfseg bench`: one point per configuration that ran."""

from __future__ import annotations

from pathlib import Path

from dfseg.analysis.bench.report import BenchReport
from dfseg.metrics.plots.canvas import new_figure, save_png

METRIC_LABELS = {"map50_95": "mAP50-95", "map50": "mAP50", "f1": "F1", "miou": "mIoU"}


def plot_latency_accuracy(report: BenchReport, path: Path) -> Path:
    """Median end-to-end latency (x, ms) against the compared metric (y); failed rows left out,
    rows that failed validation drawn as crosses."""
    figure = new_figure(8, 5)
    axes = figure.subplots()
    for row in report.rows:
        if row.latency is None or row.metric is None:
            continue
        marker = "o" if row.status == "ok" else "x"
        axes.scatter(row.latency.total_ms, row.metric, marker=marker, s=40)
        axes.annotate(row.name, (row.latency.total_ms, row.metric), fontsize="x-small",
                      xytext=(4, 4), textcoords="offset points")  # fmt: skip
    metric = f"{report.metric_group} {METRIC_LABELS[report.metric]}"
    axes.set_xlabel("latency per image, median end to end (ms), batch 1")
    axes.set_ylabel(metric)
    axes.set_title(f"{metric} vs latency on {report.split} ({report.images} images)")
    axes.grid(alpha=0.3)
    return save_png(figure, path)
