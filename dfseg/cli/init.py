"""`dfseg init`: write a commented project file that validates as written."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from dfseg.cli import render
from dfseg.cli.common import flag
from dfseg.errors import DfsegError


def init(
    directory: Path = typer.Argument(Path("."), help="Folder for the project file."),
    task: Literal["detect", "segment", "semantic"] = typer.Option(
        "detect", help="detect, segment or semantic (a class per pixel)."
    ),
    size: Literal["n", "s", "m", "l", "x"] = typer.Option("s", help="Model size."),
    name: str | None = typer.Option(None, help="Project name (default: the folder's name)."),
    data: str = typer.Option("data", help="Dataset folder, relative to the project file."),
    data_format: Literal["yolo", "coco", "voc", "masks"] = typer.Option(
        "yolo", "--format", help="Label format (masks: PNG class masks, for semantic)."
    ),
    classes: str | None = typer.Option(None, help="Comma-separated class names in id order."),
    filename: str = typer.Option("project.yaml", help="Name of the file to write."),
    force: bool = flag(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented project file to start from."""
    from dfseg.config import load_project
    from dfseg.config.template import render_project_template

    target = directory / filename
    if target.exists() and not force:
        raise DfsegError(f"{target} already exists; pass --force to overwrite it")
    project_name = name or (directory.resolve().name or "project")
    class_names = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    dataset = directory / data
    if class_names is None and (data_format != "yolo" or _has_class_file(dataset)):
        class_names = []  # COCO categories, VOC names, classes.txt / data.yaml
    sources = _split_sources(dataset, data_format)
    text = render_project_template(
        name=_folder_name(project_name),
        task=task,
        size=size,
        data_path=data,
        data_format=data_format,
        classes=class_names,
        filename=filename,
        split_sources=sources,
    )
    directory.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    load_project(target)  # what we write must validate
    render.info(f"wrote {target}")
    if class_names == []:
        render.info("classes: [] : the class names will be read from the dataset")
    if sources:
        listed = ", ".join(f"{split} = {path}" for split, path in sources.items())
        render.info(f"{dataset} comes split: data.split uses its own splits ({listed})")
    render.info(f"next: check data.path and data.classes, then `dfseg check {target}`")


def _has_class_file(dataset: Path) -> bool:
    from dfseg.data.formats.classes import class_name_candidates

    return any(path.is_file() for path in class_name_candidates(dataset))


def _split_sources(dataset: Path, data_format: str) -> dict[str, str] | None:
    """The dataset's own split folders / lists, relative to it (None when it has none)."""
    from dfseg.data.predefined import find_split_sources

    found = find_split_sources(dataset, data_format)  # type: ignore[arg-type]
    return {split: s.describe(dataset).rstrip("/") for split, s in found.items()} or None


def _folder_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in name).strip("-.")
    return cleaned or "project"
