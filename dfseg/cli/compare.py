"""`dfseg compare`: two models on the same split: per-class AP and F1, TIDE errors, latency, and
the images where only one of them is right."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer

from dfseg.cli import render
from dfseg.cli.common import JSON_OPT, cpu_threads, show
from dfseg.cli.run_target import resolve_run

if TYPE_CHECKING:
    from dfseg.analysis.compare import CompareReport

MODEL_HELP = "A run folder, a project file (its newest run) or a model file / export folder."


def compare(
    model_a: Path = typer.Argument(..., help=MODEL_HELP, metavar="A", show_default=False),
    model_b: Path = typer.Argument(..., help=MODEL_HELP, metavar="B", show_default=False),
    split: Literal["auto", "train", "val", "test"] = typer.Option(
        "auto", help="Split of A's project to compare on (auto: test, else val)."
    ),
    limit: int = typer.Option(20, min=0, help="Images listed and drawn per direction."),
    threads: int | None = typer.Option(None, min=1, help="CPU threads for inference."),
    as_json: bool = JSON_OPT,
) -> None:
    """Compare two models on A's split: metrics, errors, latency, and who is right where."""
    run, project = resolve_run(model_a, [])

    from dfseg.analysis.compare import compare_models
    from dfseg.analysis.split_data import split_images_for
    from dfseg.runtime.artifacts import resolve_artifact
    from dfseg.structures.run_folders import create_numbered_dir

    artifact_a, artifact_b = resolve_artifact(model_a), resolve_artifact(model_b)
    images = split_images_for(project, split)
    threads = cpu_threads(threads, "compare")
    out_dir = create_numbered_dir(run.path, "compare")
    with render.ProgressRenderer() as progress:
        report = compare_models(
            artifact_a, artifact_b, images, out_dir, threads=threads, limit=limit,
            progress=None if as_json else progress,
        )  # fmt: skip
    show(report, as_json, _render)


def _delta(a: float | None, b: float | None, scale: float = 100.0) -> tuple[str, str, str]:
    if a is None or b is None:
        return "-", "-", "-"
    return f"{scale * a:.1f}", f"{scale * b:.1f}", f"{scale * (b - a):+.1f}"


def _render(report: CompareReport) -> None:
    out = render.console()
    a, b = report.a, report.b
    rows = [
        ("box mAP50-95", *_delta(a.box_map50_95, b.box_map50_95)),
        ("box F1", *_delta(a.box_f1, b.box_f1)),
        ("mask mAP50-95", *_delta(a.mask_map50_95, b.mask_map50_95)),
        ("mask F1", *_delta(a.mask_f1, b.mask_f1)),
        ("threshold", f"{a.threshold:.3f}", f"{b.threshold:.3f}", ""),
        ("latency ms (batch 1)", *_delta(a.latency_ms, b.latency_ms, scale=1.0)),
    ]
    rows = [row for row in rows if row[1] != "-"]
    rows += [(f"{t} errors", str(a.errors[t]), str(b.errors[t]), f"{b.errors[t] - a.errors[t]:+d}")
             for t in a.errors]  # fmt: skip
    title = f"A = {a.artifact}\nB = {b.artifact}\n{report.split} split, {report.images} images"
    out.print(render.table(title, ["", "A", "B", "B - A"], rows))
    per_class = [
        (c.name, c.instances, *_delta(c.a_map50_95, c.b_map50_95), *_delta(c.a_f1, c.b_f1))
        for c in report.classes
    ]
    columns = ["Class", "Instances", "A mAP", "B mAP", "d mAP", "A F1", "B F1", "d F1"]
    out.print(render.table(f"Per class ({report.metric})", columns, per_class))
    out.print(
        f"only A right on {len(report.only_a_right)} images, only B right on "
        f"{len(report.only_b_right)} (side by side in {Path(report.out_dir) / 'gallery'})"
    )
