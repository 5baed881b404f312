"""`dfseg export`: ONNX / OpenVINO / TensorRT artifacts of a trained run, each checked against
torch on the run's validation images."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from dfseg.cli import render
from dfseg.cli.common import JSON_OPT, OVERRIDES_ARG, cpu_threads, flag

if TYPE_CHECKING:
    from dfseg.export.report import ExportReport

TARGET_ARG = typer.Argument(
    ...,
    help="A project file (its newest run), a run folder or a best.pt/last.pt.",
    show_default=False,
    metavar="PROJECT.yaml|RUN|best.pt",
)


def export(
    target: Path = TARGET_ARG,
    overrides: list[str] | None = OVERRIDES_ARG,
    fmt: list[str] | None = typer.Option(
        None, "--fmt", help="onnx, openvino, trt or all; repeat or comma-separate for several."
    ),
    half: bool | None = flag(
        None, "--half/--no-half", help="FP16 weights (OpenVINO compressed IR, TensorRT FP16)."
    ),
    batch: int | None = typer.Option(None, "--batch", min=1, help="Static batch (or the max)."),
    dynamic_batch: bool | None = flag(
        None, "--dynamic-batch/--static-batch", help="Any batch size at run time."
    ),
    dynamic_size: bool | None = flag(
        None,
        "--dynamic-size/--static-size",
        help="Any input height/width (for `dfseg infer --rect` on letterboxed models).",
    ),
    image_size: tuple[int, int] | None = typer.Option(
        None, "--image-size", help="Input height and width (default: the training size)."
    ),
    opset: int | None = typer.Option(None, "--opset", min=17, help="ONNX opset (>= 17)."),
    semantic_output: str | None = typer.Option(
        None,
        "--semantic-output",
        help="Semantic models: logits (default; scored like validation) or argmax (class ids).",
    ),
    num_queries: int | None = typer.Option(
        None,
        "--num-queries",
        min=1,
        help="Detect/segment: decode with fewer queries than trained (faster decoder).",
    ),
    decoder_layers: int | None = typer.Option(
        None,
        "--decoder-layers",
        min=1,
        help="Detect/segment: stop after the first N decoder layers (faster, boxes less refined).",
    ),
    force: bool = flag(False, "--force", help="Replace existing export folders."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="CPU threads for checks."),
    as_json: bool = JSON_OPT,
) -> None:
    """Export a trained model; every artifact gets its own folder and manifest under
    <run>/export/ and is compared with torch on real images (exit 1 when one disagrees)."""
    from dfseg.structures.run_layout import resolve_target

    resolved = resolve_target(target, overrides or [])  # config errors before heavy imports

    from dfseg.export.api import export_model
    from dfseg.export.options import options_from_config
    from dfseg.export.source import find_export_source

    source = find_export_source(resolved)
    formats = [part.strip() for value in fmt or [] for part in value.split(",") if part.strip()]
    threads = cpu_threads(threads, "export checks")
    options = options_from_config(
        None if source.project is None else source.project.export,
        formats=formats or None, half=half, batch=batch, dynamic_batch=dynamic_batch,
        dynamic_size=dynamic_size, image_size=image_size, opset=opset, force=force, threads=threads,
        semantic_output=semantic_output, num_queries=num_queries, decoder_layers=decoder_layers,
    )  # fmt: skip
    with render.ProgressRenderer() as progress:
        report = export_model(source, options, progress=None if as_json else progress)
    if as_json:
        render.dump_json(report)
    else:
        render_report(report)
    if not report.passed:
        for line in report.failures():
            render.error(f"parity check failed: {line}")
        raise typer.Exit(code=1)


def render_report(report: ExportReport) -> None:
    """Each artifact with its parity check, and where they are."""
    if report.task == "semantic":
        _render_semantic(report)
        return
    rows = []
    for artifact in report.artifacts:
        parity = artifact.parity
        rows.append([
            Path(artifact.folder).name, artifact.runtime_precision, artifact.size_mb,
            artifact.seconds,
            None if parity is None else f"{parity.matched}/{parity.compared}",
            None if parity is None else f"{parity.max_score_diff:.2e}",
            None if parity is None else f"{parity.max_box_diff_px:.3f}",
            None if parity is None or parity.min_box_iou is None else parity.min_box_iou,
            None if parity is None or parity.min_mask_iou is None else parity.min_mask_iou,
            "[green]ok[/]" if artifact.passed else "[red]FAILED[/]",
        ])  # fmt: skip
    columns = [
        "Artifact", "Compute", "Size MB", "Time s", "Matched", "Max score diff",
        "Max box diff px", "Min box IoU", "Min mask IoU", "Parity",
    ]  # fmt: skip
    _print_table(report, columns, rows)


def _render_semantic(report: ExportReport) -> None:
    rows = []
    for artifact in report.artifacts:
        parity = artifact.parity
        agreement = None if parity is None else parity.pixel_agreement
        logit = None if parity is None else parity.max_logit_diff
        rows.append([
            Path(artifact.folder).name, artifact.runtime_precision, artifact.size_mb,
            artifact.seconds,
            None if agreement is None else f"{100 * agreement:.3f}%",
            None if logit is None else f"{logit:.2e}",
            "[green]ok[/]" if artifact.passed else "[red]FAILED[/]",
        ])  # fmt: skip
    columns = [
        "Artifact",
        "Compute",
        "Size MB",
        "Time s",
        "Pixels agree",
        "Max logit diff",
        "Parity",
    ]
    _print_table(report, columns, rows)


def _print_table(report: ExportReport, columns: list[str], rows: list[list[object]]) -> None:
    out = render.console()
    title = (
        f"export of {report.source_checkpoint} ({report.task}, {report.input_size[0]}x"
        f"{report.input_size[1]})"
    )
    out.print(render.table(title, columns, rows, numeric_from=2))
    if report.artifacts and report.artifacts[0].parity is not None:
        out.print(f"parity images: {report.artifacts[0].parity.image_source}")
    if report.run_dir is not None:
        out.print(f"Results saved to [bold]{Path(report.run_dir) / 'export'}[/]")
