"""`dfseg val`: COCO-exact metrics of a trained checkpoint on the val or test split."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from dfseg.cli import render
from dfseg.cli.common import JSON_OPT, OVERRIDES_ARG, PROJECT_ARG, load


def val(
    project: Path = PROJECT_ARG,
    overrides: list[str] | None = OVERRIDES_ARG,
    weights: Path | None = typer.Option(
        None, "--weights", "-w", help="Checkpoint or run folder (default: newest run's best.pt)."
    ),
    split: Literal["val", "test"] = typer.Option("val", help="Split to evaluate."),
    conf: float | None = typer.Option(
        None, min=0, max=1, help="Threshold for P/R/F1 (default: the run's tuned threshold)."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Evaluate a trained model: mAP (boxes and masks), P/R/F1, confusion matrix, plots."""
    config = load(project, overrides)

    from dfseg.training.validate import validate_run

    with render.ProgressRenderer() as progress:
        result = validate_run(config, weights, split, conf, None if as_json else progress)
    if as_json:
        render.dump_json(result)
        return
    out = render.console()
    out.print(render.eval_table(result.report, f"{result.split}: {result.images} images"))
    coco = result.report.coco
    for iou_type, stats in coco.items():
        summary = "  ".join(f"{k}={v:.3f}" for k, v in stats.items() if k.startswith("AP"))
        out.print(f"{'Box' if iou_type == 'bbox' else 'Mask'} COCO: {summary}")
    out.print(f"Results saved to [bold]{result.out_dir}[/]")
