"""`dfseg check`: validate the project's dataset like the best tools do."""

from __future__ import annotations

from pathlib import Path

import typer

from dfseg.cli import render
from dfseg.cli.common import JSON_OPT, OVERRIDES_ARG, PROJECT_ARG, load
from dfseg.cli.issues_view import print_issues


def check(
    project: Path = PROJECT_ARG,
    overrides: list[str] | None = OVERRIDES_ARG,
    deep: bool = typer.Option(False, "--deep", help="Fully decode every image (slower)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Check images and labels: corrupt files, bad rows, unknown classes, duplicates, ...

    Exits with 1 when errors are found (warnings are fixed on the fly and reported).
    """
    from dfseg.data.check import check_dataset

    config = load(project, overrides)
    with render.ProgressRenderer() as progress:
        report = check_dataset(
            config.data.path,
            config.data.format,
            config.class_names or None,
            config.data.annotations,
            deep=deep,
            progress=None if as_json else progress,
        )
    if as_json:
        render.dump_json(report)
    else:
        out = render.console()
        out.print(f"[bold]{report.root}[/] ({report.format}): {report.summary()}")
        rows = [(c.class_id, c.name, c.images, c.instances) for c in report.classes]
        out.print(render.table(None, ["Id", "Class", "Images", "Instances"], rows, numeric_from=2))
        print_issues(report.issues)
        if report.ok:
            out.print("[green]dataset OK[/]")
    if not report.ok:
        raise typer.Exit(code=1)
