"""`dfseg init`: write a commented project file that validates as written."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from dfseg.cli import render
from dfseg.config import load_project
from dfseg.config.template import render_project_template
from dfseg.errors import DfsegError


def init(
    directory: Path = typer.Argument(Path("."), help="Folder for the project file."),
    task: Literal["detect", "segment"] = typer.Option("detect", help="detect or segment."),
    size: Literal["n", "s", "m", "l", "x"] = typer.Option("s", help="Model size."),
    name: str | None = typer.Option(None, help="Project name (default: the folder's name)."),
    data: str = typer.Option("data", help="Dataset folder, relative to the project file."),
    data_format: Literal["yolo", "coco", "voc"] = typer.Option("yolo", "--format"),
    classes: str | None = typer.Option(None, help="Comma-separated class names in id order."),
    filename: str = typer.Option("project.yaml", help="Name of the file to write."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented project file to start from."""
    target = directory / filename
    if target.exists() and not force:
        raise DfsegError(f"{target} already exists; pass --force to overwrite it")
    project_name = name or (directory.resolve().name or "project")
    class_names = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    text = render_project_template(
        name=_folder_name(project_name),
        task=task,
        size=size,
        data_path=data,
        data_format=data_format,
        classes=class_names,
        filename=filename,
    )
    directory.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    load_project(target)  # what we write must validate
    render.info(f"wrote {target}")
    render.info(f"next: edit data.path and data.classes, then `dfseg check {target}`")


def _folder_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in name).strip("-.")
    return cleaned or "project"
