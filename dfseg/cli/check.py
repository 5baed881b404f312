"""`dfseg check`: validate the project's dataset like the best tools do."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from dfseg.cli import render
from dfseg.cli.common import JSON_OPT, OVERRIDES_ARG, PROJECT_ARG, flag, load
from dfseg.cli.issues_view import print_issues

if TYPE_CHECKING:
    from dfseg.config import ProjectConfig
    from dfseg.data.check import CheckReport
    from dfseg.structures import Dataset


def check(
    project: Path = PROJECT_ARG,
    overrides: list[str] | None = OVERRIDES_ARG,
    deep: bool = flag(False, "--deep", help="Fully decode every image (slower)."),
    splits: bool = flag(
        False, "--splits", help="Also report copies of an image that lie in different splits."
    ),
    plot: Path | None = typer.Option(
        None, "--plot", help="Write a chart of object sizes and objects per image (PNG)."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Check images and labels: corrupt files, bad rows, unknown classes, duplicate and
    near-duplicate images, ...

    Exits with 1 when errors are found (warnings are fixed on the fly and reported).
    """
    config = load(project, overrides)

    from dfseg.config.tasks import task_spec
    from dfseg.data.check import InputSize, check_read
    from dfseg.data.project_dataset import read_project_dataset

    with render.ProgressRenderer() as progress:
        callback = None if as_json else progress
        dataset = read_project_dataset(config.data, callback, config.project.task)
        split_of = _existing_split(config, dataset.dataset) if splits else None
        report = check_read(
            dataset.result, deep=deep, progress=callback,
            duplicate_similarity=config.data.split.duplicate_similarity, splits=split_of,
            input_size=InputSize(
                config.data.image_size, config.data.keep_ratio, config.model.num_queries
            ),
            semantic=task_spec(config.project.task).semantic,
        )  # fmt: skip
    if plot is not None and report.sizes is not None:
        from dfseg.analysis.object_sizes_plot import plot_object_sizes

        plot_object_sizes(report.sizes, plot)
    if as_json:
        render.dump_json(report)
    else:
        out = render.console()
        out.print(f"[bold]{report.root}[/] ({report.format}): {report.summary()}")
        if task_spec(config.project.task).semantic:
            columns = ["Id", "Class", "Images", "Pixels"]
            rows = [(c.class_id, c.name, c.images, c.pixel_share) for c in report.classes]
        else:
            columns = ["Id", "Class", "Images", "Instances"]
            rows = [(c.class_id, c.name, c.images, c.instances) for c in report.classes]
        out.print(render.table(None, columns, rows, numeric_from=2))
        _print_sizes(report)
        _print_duplicates(report, splits)
        print_issues(report.issues)
        for note in dataset.notes:
            render.info(note)
        if dataset.conflict is not None:
            render.warn(dataset.conflict)
        if report.ok:
            out.print("[green]dataset OK[/]")
    if not report.ok:
        raise typer.Exit(code=1)


def _existing_split(config: ProjectConfig, dataset: Dataset) -> dict[Path, str]:
    """Image path -> split name of the project's split (an error when there is none)."""
    from dfseg.data.split import SPLIT_INFO_FILE, load_split
    from dfseg.errors import DfsegError

    folder = config.split_dir
    if not (folder / SPLIT_INFO_FILE).is_file():
        raise DfsegError(f"{folder}: no split yet; run `dfseg split` first (or drop --splits)")
    by_split = load_split(folder, dataset)
    return {image.image_path: name for name, images in by_split.items() for image in images}


def _print_sizes(report: CheckReport) -> None:
    sizes = report.sizes
    if sizes is None:
        return
    height, width = sizes.input_hw
    rows = [
        (c.name, c.tiny, c.small, c.medium, c.large, f"{c.median_side:.1f}") for c in sizes.classes
    ]
    columns = ["Class", "Tiny", "Small", "Medium", "Large", "Median side px"]
    title = f"Object sizes at {width}x{height} ({'letterbox' if sizes.keep_ratio else 'stretch'})"
    render.console().print(render.table(title, columns, rows, numeric_from=1))
    histogram = ", ".join(f"{k}: {v}" for k, v in sizes.per_image.items() if v)
    render.console().print(f"objects per image: {histogram} (max {sizes.max_per_image})")
    for fact in sizes.facts:
        render.info(fact)


def _print_duplicates(report: CheckReport, splits: bool) -> None:
    groups = report.duplicates
    if not groups:
        render.console().print("no duplicate or near-duplicate images")
        return
    exact = sum(group.exact for group in groups)
    images = sum(len(group.paths) for group in groups)
    near = len(groups) - exact
    line = f"{len(groups)} groups of copies ({exact} exact, {near} near; {images} images)"
    if splits:
        line += f"; {report.leaks} across splits (leaks)"
    render.console().print(line)
