"""`dfseg quantize`: OpenVINO INT8 with NNCF, validated against FP32 (metric and latency)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from dfseg.cli import render
from dfseg.cli.common import JSON_OPT, OVERRIDES_ARG
from dfseg.cli.run_target import RUN_ARG, resolve_run, split_images


def quantize(
    target: Path = RUN_ARG,
    overrides: list[str] | None = OVERRIDES_ARG,
    mode: Literal["basic", "accuracy"] | None = typer.Option(
        None, help="basic: nncf.quantize; accuracy: keep the metric drop within --max-drop."
    ),
    max_drop: float | None = typer.Option(None, min=0, help="Largest allowed metric drop."),
    metric: Literal["f1", "map50_95", "map50"] | None = typer.Option(
        None, help="Metric to protect (F1 at the run's threshold by default)."
    ),
    calibration_images: int | None = typer.Option(
        None, min=1, help="Calibration subset size (train images)."
    ),
    preset: Literal["performance", "mixed"] | None = typer.Option(None, help="NNCF preset."),
    int8_precision: Literal["fp32", "default"] = typer.Option(
        "fp32",
        help="Compute precision of the layers left in floating point: fp32 (what accuracy "
        "control checks) or default (the device's, bf16 on recent CPUs: faster, less exact).",
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing openvino-int8."),
    threads: int | None = typer.Option(None, min=1, help="CPU threads for validation."),
    as_json: bool = JSON_OPT,
) -> None:
    """INT8 post-training quantization of the run's OpenVINO model, validated against FP32.

    Defaults come from the project's `export.quantize` section. The INT8 model goes to
    <run>/export/openvino-int8/ (bench picks it up). Exits with 1 when the metric drops more
    than allowed.
    """
    from dfseg.export.quantize import (
        QuantizeData,
        QuantizeOptions,
        ensure_openvino_fp32,
        quantize_openvino,
    )

    run = resolve_run(target, overrides)
    section = run.config.export.quantize
    options = QuantizeOptions(
        mode=mode or section.mode,
        max_drop=section.max_drop if max_drop is None else max_drop,
        metric=metric or section.metric,
        calibration_images=calibration_images or section.calibration_images,
        preset=preset or section.preset,
        int8_precision=int8_precision,
        threads=threads,
        force=force,
    )
    train, val = split_images(run, "train"), split_images(run, "val")
    data = QuantizeData(train.image_paths, val.image_paths, val.ground_truths, val.class_names)
    with render.ProgressRenderer() as progress:
        callback = None if as_json else progress
        fp32 = ensure_openvino_fp32(run.run_dir, threads, callback)
        report = quantize_openvino(fp32, data, options, callback)
    if as_json:
        render.dump_json(report)
    else:
        _render(report)
    if not report.passed:
        raise typer.Exit(code=1)


def _render(report: object) -> None:
    from dfseg.export.quantize import QuantizeReport

    assert isinstance(report, QuantizeReport)
    group = "mask" if report.fp32.mask is not None else "box"
    columns = ["Model", "Compute", report.metric, "mAP50-95", "mAP50", "F1", "ms", "p95 ms"]
    rows = []
    for result in (report.fp32, report.int8):
        metrics = getattr(result, group)
        rows.append([
            f"{result.weights_precision} {Path(result.artifact).parent.name}",
            result.inference_precision, result.metric, metrics.map50_95, metrics.map50,
            metrics.f1, result.latency_ms, result.latency_p95_ms,
        ])  # fmt: skip
    out = render.console()
    table = render.table(
        f"{report.mode} INT8 on {report.validation_images} val images ({group} metrics)",
        columns,
        rows,
        numeric_from=2,
    )
    table.caption = (
        f"calibration: {report.calibration_images} train images (asked "
        f"{report.calibration_requested}); F1 at the run's threshold {report.threshold:.3f}; "
        "latency end to end at batch 1"
    )
    out.print(table)
    verdict = "[green]within[/]" if report.passed else "[red]beyond[/]"
    speedup = report.fp32.latency_ms / report.int8.latency_ms if report.int8.latency_ms else 0.0
    out.print(
        f"{report.metric} drop {report.drop:+.4f} ({verdict} the allowed {report.max_drop}); "
        f"INT8 is {speedup:.2f}x the FP32 speed. Saved to [bold]{report.folder}[/]"
    )
