"""`dfseg quantize`: OpenVINO INT8 with NNCF, validated against FP32 (metric and latency)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer

from dfseg.cli import render
from dfseg.cli.common import JSON_OPT, OVERRIDES_ARG, cpu_threads, flag, show
from dfseg.cli.run_target import RUN_ARG, resolve_run
from dfseg.config.choices import QuantizeScope

if TYPE_CHECKING:
    from dfseg.analysis.quantize import QuantizeReport


def quantize(
    target: Path = RUN_ARG,
    overrides: list[str] | None = OVERRIDES_ARG,
    mode: Literal["basic", "accuracy"] | None = typer.Option(
        None, help="basic: nncf.quantize; accuracy: keep the metric drop within --max-drop."
    ),
    max_drop: float | None = typer.Option(None, min=0, help="Largest allowed metric drop."),
    metric: Literal["f1", "map50_95", "map50", "miou"] | None = typer.Option(
        None, help="Metric to protect (F1 at the run's threshold by default; semantic: miou)."
    ),
    calibration_images: int | None = typer.Option(
        None, min=1, help="Calibration subset size (train images)."
    ),
    preset: Literal["performance", "mixed"] | None = typer.Option(None, help="NNCF preset."),
    scope: QuantizeScope | None = typer.Option(
        None,
        help="What may become INT8: all, backbone (decoder left in floating point) or "
        "no_attention (decoder layers left in floating point).",
    ),
    int8_precision: Literal["fp32", "default"] = typer.Option(
        "fp32",
        help="Compute precision of the layers left in floating point: fp32 (what accuracy "
        "control checks) or default (the device's, bf16 on recent CPUs: faster, less exact).",
    ),
    force: bool = flag(False, "--force", help="Replace an existing openvino-int8."),
    threads: int | None = typer.Option(None, min=1, help="CPU threads for validation."),
    as_json: bool = JSON_OPT,
) -> None:
    """INT8 post-training quantization of the run's OpenVINO model, validated against FP32.

    Defaults come from the project's `export.quantize` section. The INT8 model goes to
    <run>/export/openvino-int8/ (bench picks it up). Exits with 1 when the metric drops more
    than allowed.
    """
    run, project = resolve_run(target, overrides)

    from dfseg.analysis.quantize import quantize_options, quantize_run

    threads = cpu_threads(threads, "quantize")
    options = quantize_options(
        project.export.quantize, mode=mode, max_drop=max_drop, metric=metric,
        calibration_images=calibration_images, preset=preset, int8_precision=int8_precision,
        threads=threads, force=force, scope=scope,
    )  # fmt: skip
    with render.ProgressRenderer() as progress:
        report = quantize_run(run, project, options, None if as_json else progress)
    show(report, as_json, render_report)


def render_report(report: QuantizeReport) -> None:
    """FP32 beside INT8 (metric, mAP, F1 or mIoU, mPA, latency) and the verdict."""
    semantic = report.fp32.semantic is not None
    group = "semantic" if semantic else "mask" if report.fp32.mask is not None else "box"
    names = ["mPA", "Pixel acc"] if semantic else ["mAP50-95", "mAP50", "F1"]
    columns = ["Model", "Compute", "mIoU" if semantic else report.metric, *names, "ms", "p95 ms"]
    rows = []
    for result in (report.fp32, report.int8):
        metrics = getattr(result, group)
        values = (
            [metrics.mpa, metrics.pixel_accuracy]
            if semantic
            else [metrics.map50_95, metrics.map50, metrics.f1]
        )
        rows.append([
            f"{result.weights_precision} {Path(result.artifact).parent.name}",
            result.inference_precision, result.metric, *values, result.latency_ms,
            result.latency_p95_ms,
        ])  # fmt: skip
    out = render.console()
    table = render.table(
        f"{report.mode} INT8 on {report.validation_images} val images ({group} metrics)",
        columns,
        rows,
        numeric_from=2,
    )
    threshold = "" if semantic else f"; F1 at the run's threshold {report.threshold:.3f}"
    table.caption = (
        f"calibration: {report.calibration_images} train images (asked "
        f"{report.calibration_requested}){threshold}; latency end to end at batch 1"
    )
    out.print(table)
    verdict = "[green]within[/]" if report.passed else "[red]beyond[/]"
    speedup = report.fp32.latency_ms / report.int8.latency_ms if report.int8.latency_ms else 0.0
    out.print(
        f"{report.metric} drop {report.drop:+.4f} ({verdict} the allowed {report.max_drop}); "
        f"INT8 is {speedup:.2f}x the FP32 speed. Saved to [bold]{report.folder}[/]"
    )
