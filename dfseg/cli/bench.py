"""`dfseg bench`: accuracy and latency of every artifact of a run against torch FP32."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import typer

from dfseg.cli import render
from dfseg.cli.common import JSON_OPT, OVERRIDES_ARG, cpu_threads, show
from dfseg.cli.run_target import RUN_ARG, resolve_run

if TYPE_CHECKING:
    from dfseg.analysis.bench import BenchReport
    from dfseg.analysis.bench.report import BenchRow


def bench(
    target: Path = RUN_ARG,
    overrides: list[str] | None = OVERRIDES_ARG,
    max_drop: float | None = typer.Option(
        None, min=0, help="Exit with 1 when a format's metric drops more than this (for CI)."
    ),
    metric: Literal["map50_95", "map50", "f1", "miou"] = typer.Option(
        "map50_95",
        help="Metric compared against torch FP32 (masks for segmentation; semantic: miou).",
    ),
    device: list[str] = typer.Option(["cpu"], help="Devices to run on (repeat: cpu, cuda)."),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="CPU threads per backend (default: bench.threads, all)."
    ),
    tile: int | None = typer.Option(
        None, "--tile", min=32, help="Predict tile by tile (tile side in pixels; see infer)."
    ),
    tile_overlap: float = typer.Option(0.2, "--tile-overlap", min=0.0, max=0.95),
    as_json: bool = JSON_OPT,
) -> None:
    """Accuracy and latency of the checkpoint and every export of a run, against torch FP32.

    Runs on the test split (val without one): status, size, mAP, F1/P/R at the run's threshold,
    latency per stage (median, p95) and FPS, one row per format x precision x device.

    Settings come from the project's `bench:` section (split, warmup, runs, threads, max_drop,
    max_images); options override it.
    """
    run, project = resolve_run(target, overrides)

    from dfseg.analysis.bench import bench_run, bench_settings

    threads = cpu_threads(threads or project.bench.threads, "bench")
    from dfseg.runtime.tiling import tile_settings

    tile_config = {**project.infer.tile.model_dump(), "overlap": tile_overlap}
    tiling = tile_settings({**tile_config, "size": tile}) if tile is not None else None
    settings = bench_settings(
        project.bench, metric=metric, max_drop=max_drop, devices=device, threads=threads,
        tiling=tiling,
    )  # fmt: skip
    with render.ProgressRenderer() as progress:
        report = bench_run(run, project, settings, None if as_json else progress)
    show(report, as_json, render_report)


def render_report(report: BenchReport) -> None:
    """The bench table (one row per format x precision x device) and where the results are."""
    if report.metric_group == "semantic":
        _render_semantic(report)
        return
    group = report.metric_group
    columns = [
        "Format", "Status", "Size MB", "mAP50-95", "mAP50", "F1", "P", "R", "Drop",
        "Pre ms", "Infer ms", "Post ms", "Total ms", "p95 ms", "FPS",
    ]  # fmt: skip
    rows = []
    for row in report.rows:
        metrics = row.mask if group == "mask" else row.box
        accuracy: list[float | None] = [None] * 5 if metrics is None else [
            metrics.map50_95, metrics.map50, metrics.f1, metrics.precision, metrics.recall,
        ]  # fmt: skip
        rows.append([_name(row), row.status, row.size_mb, *accuracy, row.drop, *_latency(row)])
    table = render.table(
        f"{report.split}: {report.images} images, {group} metrics"
        + (f", {report.tiling}" if report.tiling else ""),
        columns, rows, numeric_from=2,
    )  # fmt: skip
    table.caption = (
        f"F1/P/R at the run's threshold {report.threshold:.3f}; drop = torch FP32 "
        f"{report.metric} minus the format's; latency at batch 1, median after warm-up"
    )
    _print(report, table)


def _render_semantic(report: BenchReport) -> None:
    columns = [
        "Format", "Status", "Size MB", "mIoU", "mPA", "mPrec", "Pixel acc", "Drop",
        "Pre ms", "Infer ms", "Post ms", "Total ms", "p95 ms", "FPS",
    ]  # fmt: skip
    rows = []
    for row in report.rows:
        scores = row.semantic
        accuracy: list[float | None] = [None] * 4 if scores is None else [
            scores.miou, scores.mpa, scores.mean_precision, scores.pixel_accuracy,
        ]  # fmt: skip
        rows.append([_name(row), row.status, row.size_mb, *accuracy, row.drop, *_latency(row)])
    table = render.table(
        f"{report.split}: {report.images} images, semantic metrics in original pixels",
        columns, rows, numeric_from=2,
    )  # fmt: skip
    table.caption = (
        "drop = torch FP32 mIoU minus the format's; latency at batch 1 (postprocess includes "
        "resizing the class scores to the image), median after warm-up"
    )
    _print(report, table)


def _name(row: BenchRow) -> str:
    if row.inference_precision is None:
        return row.name
    return f"{row.name} ({row.inference_precision})"


def _latency(row: BenchRow) -> list[float | None]:
    if row.latency is None:
        return [None] * 6
    stages = row.latency.stages
    return [
        stages["preprocess"].median_ms, stages["inference"].median_ms,
        stages["postprocess"].median_ms, stages["total"].median_ms,
        stages["total"].p95_ms, row.latency.fps,
    ]  # fmt: skip


def _print(report: BenchReport, table: Any) -> None:
    out = render.console()
    out.print(table)
    for row in report.rows:
        if row.reason:
            out.print(f"[yellow]{row.name}[/]: {row.reason}")
    out.print(f"Results saved to [bold]{report.out_dir}[/]")
