"""Throughput plot of `dfseg batching`: images/s and time per call against batch size."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dfseg.metrics.plots.canvas import new_figure, save_png

if TYPE_CHECKING:
    from dfseg.analysis.batching import BatchingReport


def plot_batching(report: BatchingReport, path: Path) -> Path:
    """Throughput (left axis) and median time per call (right axis) per batch size; the
    recommended size is marked."""
    rows = [r for r in report.rows if r.images_per_second is not None]
    figure = new_figure(7, 4.5)
    axes = figure.subplots()
    sizes = [r.batch_size for r in rows]
    axes.plot(sizes, [r.images_per_second or 0.0 for r in rows], "o-", label="images/s")
    axes.set_xscale("log", base=2)
    axes.set_xticks(sizes, [str(s) for s in sizes])
    axes.set_xlabel("batch size")
    axes.set_ylabel("throughput (images/s)")
    latency_axes = axes.twinx()
    latency_axes.plot(
        sizes,
        [r.batch_ms_median or 0.0 for r in rows],
        "s--",
        color="tab:orange",
        label="ms per call",
    )
    latency_axes.set_ylabel("time per call, median (ms)")
    if report.recommended_batch is not None:
        axes.axvline(report.recommended_batch, color="tab:green", alpha=0.5, linestyle=":")
    axes.set_title(f"{report.backend} ({report.precision}) on {report.device}")
    axes.grid(alpha=0.3)
    return save_png(figure, path)
