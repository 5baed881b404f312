"""`dfseg profile`: where the milliseconds of a prediction go, per stage and per layer."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from dfseg.cli import render
from dfseg.cli.common import JSON_OPT, cpu_threads, show
from dfseg.cli.run_target import MODEL_ARG
from dfseg.config.choices import Backend

if TYPE_CHECKING:
    from dfseg.analysis.profile import ProfileReport


def profile(
    target: Path = MODEL_ARG,
    backend: Backend | None = typer.Option(None, "--backend", help="Backend (default: auto)."),
    images: list[Path] | None = typer.Option(
        None, "--image", help="Real images to cycle through (repeatable; default: a grey frame)."
    ),
    runs: int = typer.Option(20, "--runs", min=1, help="Timed batch-1 predictions."),
    top: int = typer.Option(15, "--top", min=1, help="Slowest layers listed."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="CPU threads."),
    precision: str | None = typer.Option(None, "--precision", help="OpenVINO precision."),
    as_json: bool = JSON_OPT,
) -> None:
    """Profile a model: time per stage, per layer and per kind of layer, with a chart."""
    from dfseg.analysis.profile import profile_model
    from dfseg.runtime.artifacts import resolve_artifact
    from dfseg.structures.run_folders import create_numbered_dir
    from dfseg.structures.run_layout import RunFolder

    name = None if backend in (None, "auto") else backend
    artifact = resolve_artifact(target, name)
    run = RunFolder.containing(artifact)
    out_dir = create_numbered_dir(run.path if run is not None else artifact.parent, "profile")
    threads = cpu_threads(threads, "profile")
    with render.ProgressRenderer() as progress:
        report = profile_model(
            artifact, images or [], name, threads=threads, precision=precision, runs=runs,
            top=top, out_dir=out_dir, progress=None if as_json else progress,
        )  # fmt: skip
    show(report, as_json, _render)


def _render(report: ProfileReport) -> None:
    out = render.console()
    info = ", ".join(f"{k} {v}" for k, v in report.device_info.items())
    stages = report.stages_ms
    out.print(
        f"{report.artifact} on {report.backend} ({info}), {report.runs} runs: "
        f"{stages['total']:.2f} ms per image = {stages['preprocess']:.2f} preprocess + "
        f"{stages['inference']:.2f} inference + {stages['postprocess']:.2f} postprocess"
    )
    parts = [(c.kind, f"{c.ms:.3f}", f"{100 * c.share:.1f}%") for c in report.by_component]
    out.print(render.table("Inference by part of the model", ["Part", "ms", "Share"], parts))
    kinds = [(k.kind, f"{k.ms:.3f}", f"{100 * k.share:.1f}%") for k in report.by_kind]
    out.print(render.table("Inference by kind of layer", ["Kind", "ms", "Share"], kinds))
    layers = [
        (l.name[-60:], l.kind, l.precision, f"{l.ms:.3f}", f"{100 * l.share:.1f}%")
        for l in report.top_layers
    ]
    columns = ["Layer", "Kind", "Precision", "ms", "Share"]
    out.print(render.table(f"Slowest {len(layers)} layers", columns, layers))
    out.print(
        f"layers {report.layers_ms:.2f} ms, outside them {report.other_ms:.2f} ms per image; "
        f"chart: [bold]{report.plot}[/]"
    )
