"""`dfseg batching`: throughput per batch size, with a batched-equals-batch-1 check."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from dfseg.cli import render
from dfseg.cli.common import JSON_OPT, OVERRIDES_ARG, cpu_threads, show
from dfseg.cli.run_target import RUN_ARG, resolve_run
from dfseg.config.choices import Backend

if TYPE_CHECKING:
    from dfseg.analysis.batching import BatchingReport


def _batch_sizes(value: str) -> list[int]:
    try:
        sizes = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not sizes or min(sizes) < 1:
        raise typer.BadParameter(f"batch sizes must be >= 1, got {value!r}")
    return sizes


def batching(
    target: Path = RUN_ARG,
    overrides: list[str] | None = OVERRIDES_ARG,
    backend: Backend = typer.Option(
        "torch", help="The backend (the run's newest export it runs; auto: torch)."
    ),
    weights: Path | None = typer.Option(
        None, "--weights", "-w", help="Model file or export folder (default: chosen by backend)."
    ),
    batch_sizes: str = typer.Option("1,2,4,8", help="Comma-separated batch sizes to try."),
    warmup: int = typer.Option(2, min=0, help="Untimed calls per batch size."),
    repeats: int = typer.Option(5, min=1, help="Timed calls per batch size."),
    images: int = typer.Option(8, min=1, help="Distinct val images cycled into the batches."),
    threads: int | None = typer.Option(None, min=1, help="CPU threads (default: all)."),
    device: str | None = typer.Option(None, help="cpu, cuda, ... (default: the backend's)."),
    precision: str | None = typer.Option(None, help="OpenVINO inference precision."),
    as_json: bool = JSON_OPT,
) -> None:
    """Throughput per batch size, with a check that batched outputs equal batch-1 outputs.

    Recommends a batch size. Needs a dynamic-batch export (torch always works).
    """
    sizes = _batch_sizes(batch_sizes)
    run, project = resolve_run(target, overrides)

    from dfseg.analysis.batching import run_batching
    from dfseg.analysis.split_data import split_images_for
    from dfseg.runtime.images import read_image_bgr
    from dfseg.runtime.predictor import load_predictor
    from dfseg.structures.run_folders import create_numbered_dir

    split = split_images_for(project, "val", images)
    threads = cpu_threads(threads, "batching", device)
    predictor = load_predictor(
        weights or run.path, backend, device, threads=threads, precision=precision
    )
    arrays = [read_image_bgr(path) for path in split.image_paths]
    out_dir = create_numbered_dir(run.path, "batching")
    with render.ProgressRenderer() as progress:
        report = run_batching(
            predictor, arrays, sizes, out_dir, warmup, repeats, None if as_json else progress
        )
    show(report, as_json, _render)


def _render(report: BatchingReport) -> None:
    columns = ["Batch", "Status", "Images/s", "ms/image", "ms/call", "p95 ms/call", "Max box diff"]
    rows = [
        (r.batch_size, r.status, r.images_per_second, r.ms_per_image, r.batch_ms_median,
         r.batch_ms_p95, r.max_box_diff_px)
        for r in report.rows
    ]  # fmt: skip
    out = render.console()
    title = f"{report.backend} ({report.precision}, {report.device}): {Path(report.artifact).name}"
    out.print(render.table(title, columns, rows))
    for row in report.rows:
        if row.reason:
            out.print(f"[yellow]batch {row.batch_size}[/]: {row.reason}")
    out.print(f"recommended: {report.recommendation}")
    out.print(f"Results saved to [bold]{report.out_dir}[/]")
