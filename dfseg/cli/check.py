"""`dfseg check`: validate the project's dataset like the best tools do."""

from __future__ import annotations

from pathlib import Path

import typer

from dfseg.cli import render
from dfseg.cli.common import JSON_OPT, OVERRIDES_ARG, PROJECT_ARG, flag, load
from dfseg.cli.issues_view import print_issues


def check(
    project: Path = PROJECT_ARG,
    overrides: list[str] | None = OVERRIDES_ARG,
    deep: bool = flag(False, "--deep", help="Fully decode every image (slower)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Check images and labels: corrupt files, bad rows, unknown classes, duplicates, ...

    Exits with 1 when errors are found (warnings are fixed on the fly and reported).
    """
    config = load(project, overrides)

    from dfseg.data.check import check_read
    from dfseg.data.project_dataset import read_project_dataset

    with render.ProgressRenderer() as progress:
        callback = None if as_json else progress
        dataset = read_project_dataset(config.data, callback)
        report = check_read(dataset.result, deep=deep, progress=callback)
    if as_json:
        render.dump_json(report)
    else:
        out = render.console()
        out.print(f"[bold]{report.root}[/] ({report.format}): {report.summary()}")
        rows = [(c.class_id, c.name, c.images, c.instances) for c in report.classes]
        out.print(render.table(None, ["Id", "Class", "Images", "Instances"], rows, numeric_from=2))
        print_issues(report.issues)
        for note in dataset.notes:
            render.info(note)
        if dataset.conflict is not None:
            render.warn(dataset.conflict)
        if report.ok:
            out.print("[green]dataset OK[/]")
    if not report.ok:
        raise typer.Exit(code=1)
