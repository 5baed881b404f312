"""`dfseg convert`: write the project's dataset as YOLO, COCO or index masks into a new folder."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from dfseg.cli import render
from dfseg.cli.common import JSON_OPT, OVERRIDES_ARG, PROJECT_ARG, flag, load


def convert(
    project: Path = PROJECT_ARG,
    overrides: list[str] | None = OVERRIDES_ARG,
    out: Path = typer.Option(..., "--out", "-o", help="New folder to write (never overwritten)."),
    to: Literal["yolo", "coco", "masks"] = typer.Option(
        ...,
        "--to",
        help="Target label format; masks = index PNGs (polygons rasterised, background first).",
    ),
    symlink: bool = flag(False, "--symlink", help="Link images instead of copying."),
    skip_invalid: bool = flag(
        False, "--skip-invalid", help="Convert although some images or label rows are invalid."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Convert the dataset's labels to YOLO txt, COCO JSON or semantic index masks (PNG)."""
    config = load(project, overrides)

    from dfseg.data.convert import convert_dataset
    from dfseg.data.project_dataset import read_project_dataset

    # Index masks are semantic labels: instance labels are rasterised to class regions first.
    task = "semantic" if to == "masks" else config.project.task
    dataset = read_project_dataset(config.data, task=task).dataset
    report = convert_dataset(
        dataset, out, to, images="symlink" if symlink else "copy", skip_invalid=skip_invalid
    )
    if as_json:
        render.dump_json(report)
        return
    labels = (
        f"{report.instances} class regions"
        if to == "masks"
        else f"{report.instances} instances ({report.segments} with masks)"
    )
    render.console().print(
        f"wrote {report.images} images, {labels} as {report.format} to {report.out_dir}"
    )
    for note in report.notes:
        render.warn(note)
    for line in report.skipped:
        render.warn(f"skipped {line}")
