"""`dfseg convert`: write the project's dataset as YOLO or COCO into a new folder."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from dfseg.cli import render
from dfseg.cli.common import JSON_OPT, OVERRIDES_ARG, PROJECT_ARG, load


def convert(
    project: Path = PROJECT_ARG,
    overrides: list[str] | None = OVERRIDES_ARG,
    out: Path = typer.Option(..., "--out", "-o", help="New folder to write (never overwritten)."),
    to: Literal["yolo", "coco"] = typer.Option(..., "--to", help="Target label format."),
    symlink: bool = typer.Option(False, "--symlink", help="Link images instead of copying."),
    as_json: bool = JSON_OPT,
) -> None:
    """Convert the dataset's labels to YOLO txt or COCO JSON."""
    from dfseg.data.convert import convert_dataset
    from dfseg.data.reading import read_dataset

    config = load(project, overrides)
    dataset = read_dataset(
        config.data.path, config.data.format, config.class_names or None, config.data.annotations
    )
    report = convert_dataset(dataset, out, to, images="symlink" if symlink else "copy")
    if as_json:
        render.dump_json(report)
        return
    render.console().print(
        f"wrote {report.images} images, {report.instances} instances "
        f"({report.segments} with masks) as {report.format} to {report.out_dir}"
    )
    for note in report.notes:
        render.warn(note)
