"""`dfseg bench`: accuracy and latency of every artifact of a run against torch FP32."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from dfseg.cli import render
from dfseg.cli.common import JSON_OPT, OVERRIDES_ARG
from dfseg.cli.run_target import RUN_ARG, resolve_run, run_manifest, split_images


def bench(
    target: Path = RUN_ARG,
    overrides: list[str] | None = OVERRIDES_ARG,
    max_drop: float | None = typer.Option(
        None, min=0, help="Exit with 1 when a format's metric drops more than this (for CI)."
    ),
    metric: Literal["map50_95", "map50", "f1"] = typer.Option(
        "map50_95", help="Metric compared against torch FP32 (masks for segmentation)."
    ),
    device: list[str] = typer.Option(["cpu"], help="Devices to run on (repeat: cpu, cuda)."),
    as_json: bool = JSON_OPT,
) -> object:
    """Accuracy and latency of the checkpoint and every export of a run, against torch FP32.

    Runs on the test split (val without one): status, size, mAP, F1/P/R at the run's threshold,
    latency per stage (median, p95) and FPS, one row per format x precision x device.

    Settings come from the project's `bench:` section (split, warmup, runs, threads, max_drop,
    max_images); options override it.
    """
    from dfseg.analysis.bench import BenchSettings, run_bench
    from dfseg.structures.run_folders import create_numbered_dir

    if metric not in ("map50_95", "map50", "f1"):
        raise typer.BadParameter(
            f"use map50_95, map50 or f1, not {metric!r}", param_hint="--metric"
        )
    run = resolve_run(target, overrides)
    section = run.config.bench
    images = split_images(run, section.split, section.max_images)
    settings = BenchSettings(
        warmup=section.warmup,
        runs=section.runs,
        threads=section.threads,
        metric=metric,
        max_drop=max_drop if max_drop is not None else section.max_drop,
        devices=tuple(device),
    )
    threshold = run_manifest(run).threshold
    out_dir = create_numbered_dir(run.run_dir, "bench")
    with render.ProgressRenderer() as progress:
        report = run_bench(
            run.run_dir, images, out_dir, settings, threshold, None if as_json else progress
        )
    if as_json:
        render.dump_json(report)
    else:
        render_report(report)
    if not report.passed:
        raise typer.Exit(code=1)
    return report


def render_report(report: object) -> None:
    """The bench table (one row per format x precision x device) and where the results are."""
    from dfseg.analysis.bench_report import BenchReport

    assert isinstance(report, BenchReport)
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
        latency: list[float | None] = [None] * 6
        if row.latency is not None:
            stages = row.latency.stages
            latency = [
                stages["preprocess"].median_ms, stages["inference"].median_ms,
                stages["postprocess"].median_ms, stages["total"].median_ms,
                stages["total"].p95_ms, row.latency.fps,
            ]  # fmt: skip
        name = (
            row.name
            if row.inference_precision is None
            else f"{row.name} ({row.inference_precision})"
        )
        rows.append([name, row.status, row.size_mb, *accuracy, row.drop, *latency])
    out = render.console()
    table = render.table(
        f"{report.split}: {report.images} images, {group} metrics", columns, rows, numeric_from=2
    )
    table.caption = (
        f"F1/P/R at the run's threshold {report.threshold:.3f}; drop = torch FP32 "
        f"{report.metric} minus the format's; latency at batch 1, median after warm-up"
    )
    out.print(table)
    for row in report.rows:
        if row.reason:
            out.print(f"[yellow]{row.name}[/]: {row.reason}")
    out.print(f"Results saved to [bold]{report.out_dir}[/]")
