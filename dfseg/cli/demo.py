"""`dfseg demo`: the whole workflow on generated data, end to end.

Stages: generate a synthetic shapes dataset -> write its project file -> check -> split. Later
stages (train, export, quantize, bench, infer) run on what the earlier ones wrote.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from dfseg.cli import render
from dfseg.config import ProjectConfig, load_project
from dfseg.config.template import render_project_template
from dfseg.errors import DfsegError

DEMO_CLASSES = ["circle", "square", "triangle", "star"]


def demo(
    out: Path = typer.Option(Path("dfseg-demo"), "--out", "-o", help="Folder for everything."),
    task: Literal["detect", "segment"] = typer.Option("segment", help="detect or segment."),
    images: int = typer.Option(240, min=20, help="Number of generated images."),
    image_size: int = typer.Option(256, help="Generated image and network input size."),
    force: bool = typer.Option(False, "--force", help="Start over in an existing demo folder."),
) -> None:
    """Run the whole workflow on a generated dataset (the README's first command)."""
    project_file = _prepare(out, task, images, image_size, force)
    config = load_project(project_file)
    _stage("check")
    _check(config)
    _stage("split")
    _split(config)
    render.console().print(f"\n[bold green]demo finished[/]: project file {project_file}")


def _stage(name: str) -> None:
    render.console().rule(f"[bold]{name}")


def _prepare(out: Path, task: str, images: int, image_size: int, force: bool) -> Path:
    from dfseg.data.synthetic import generate_synthetic_dataset

    if image_size % 32 or image_size < 128:
        raise DfsegError(f"--image-size must be a multiple of 32 and >= 128 (got {image_size})")
    project_file = out / "project.yaml"
    if project_file.exists() and not force:
        raise DfsegError(f"{project_file} exists; pass --force to run the demo again there")
    _stage("generate")
    with render.ProgressRenderer() as progress:
        generate_synthetic_dataset(
            out / "data",
            num_images=images,
            image_size=(image_size, image_size),
            classes=DEMO_CLASSES,
            seed=0,
            overwrite=force,
            progress=progress,
        )
    text = render_project_template(
        name="shapes",
        task=task,
        size="n",
        data_path="data",
        classes=DEMO_CLASSES,
        image_size=(image_size, image_size),
    )
    project_file.write_text(text, encoding="utf-8")
    render.info(f"wrote {images} images to {out / 'data'} and {project_file}")
    return project_file


def _check(config: ProjectConfig) -> None:
    from dfseg.data.check import check_dataset

    report = check_dataset(config.data.path, config.data.format, config.class_names)
    render.console().print(report.summary())
    if not report.ok:
        raise DfsegError("the generated dataset failed its check; this is a bug, please report it")


def _split(config: ProjectConfig) -> None:
    from dfseg.data.reading import read_dataset
    from dfseg.data.split import split_dataset

    dataset = read_dataset(config.data.path, config.data.format, config.class_names)
    ratios = config.data.split
    report = split_dataset(
        dataset,
        config.split_dir,
        ratios=(ratios.train, ratios.val, ratios.test),
        seed=ratios.seed,
        overwrite=True,
    )
    render.console().print(
        "split: " + ", ".join(f"{name} {count}" for name, count in report.counts.items())
    )
