"""`dfseg info`: parameters, FLOPs and output shapes of a model configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from dfseg.cli import render
from dfseg.cli.common import JSON_OPT, OVERRIDES_ARG, load
from dfseg.config.tasks import Task


def info(
    project: Path | None = typer.Argument(
        None,
        help="A project file (optional): its size, task, classes and input size.",
        show_default=False,
        metavar="[PROJECT.yaml]",
    ),
    overrides: list[str] | None = OVERRIDES_ARG,
    size: Literal["n", "s", "m", "l", "x"] | None = typer.Option(None, help="Model size."),
    task: Literal["detect", "segment", "semantic"] | None = typer.Option(
        None, help="detect, segment or semantic."
    ),
    image_size: tuple[int, int] | None = typer.Option(
        None, "--image-size", help="Input height and width.", show_default=False
    ),
    num_classes: int | None = typer.Option(None, "--classes", help="Class count (default 80)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Show parameters (total, trainable, per part), FLOPs and output shapes."""
    chosen_size: str = "s"
    chosen_task: Task = "detect"
    classes, hw = 80, (640, 640)
    if project is not None:
        config = load(project, overrides)
        chosen_size, chosen_task = config.model.size, config.project.task
        classes, hw = len(config.class_names) or 80, config.data.image_size

    from dfseg.nn.info import model_info

    report = model_info(
        size or chosen_size, task or chosen_task, num_classes or classes, image_size or hw
    )
    if as_json:
        render.dump_json(report)
        return
    out = render.console()
    out.print(
        f"D-FINE-{report.size.upper()} {report.task}, {report.num_classes} classes, input "
        f"{report.image_size[0]}x{report.image_size[1]}: {report.parameters:,} parameters "
        f"({report.trainable_parameters:,} trainable), {report.gflops:.2f} GFLOPs"
    )
    rows = [
        (part, f"{report.parameters_by_part[part]:,}", f"{report.gflops_by_part.get(part, 0):.2f}")
        for part in report.parameters_by_part
    ]
    out.print(render.table(None, ["Part", "Parameters", "GFLOPs"], rows))
    shapes = [(name, str(shape)) for name, shape in report.output_shapes.items()]
    out.print(render.table("Outputs (eval)", ["Output", "Shape"], shapes))
