"""`dfseg split`: seeded train/val/test lists; the user's files are never touched."""

from __future__ import annotations

from pathlib import Path

import typer

from dfseg.cli import render
from dfseg.cli.common import JSON_OPT, OVERRIDES_ARG, PROJECT_ARG, load


def split(
    project: Path = PROJECT_ARG,
    overrides: list[str] | None = OVERRIDES_ARG,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing split lists."),
    as_json: bool = JSON_OPT,
) -> None:
    """Split the dataset into train/val/test lists (data.split ratios and seed)."""
    from dfseg.data.reading import read_dataset
    from dfseg.data.split import split_dataset

    config = load(project, overrides)
    ratios = config.data.split
    dataset = read_dataset(
        config.data.path, config.data.format, config.class_names or None, config.data.annotations
    )
    report = split_dataset(
        dataset,
        config.split_dir,
        ratios=(ratios.train, ratios.val, ratios.test),
        seed=ratios.seed,
        ignore_negatives=ratios.ignore_negatives,
        overwrite=overwrite,
    )
    if as_json:
        render.dump_json(report)
        return
    names = [name for name in ("train", "val", "test") if report.ratios.get(name, 0) > 0]
    columns = ["Class"] + [f"{n} img/inst" for n in names]
    rows = [
        [c.name] + [f"{c.images.get(n, 0)}/{c.instances.get(n, 0)}" for n in names]
        for c in report.classes
    ]
    rows.append(["all images"] + [str(report.counts.get(n, 0)) for n in names])
    rows.append(["backgrounds"] + [str(report.backgrounds.get(n, 0)) for n in names])
    out = render.console()
    out.print(render.table(f"Split (seed {report.seed})", columns, rows))
    for note in report.notes:
        render.warn(note)
    out.print(f"wrote {report.out_dir}")
