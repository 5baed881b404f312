"""`dfseg split`: seeded train/val/test lists; the user's files are never touched."""

from __future__ import annotations

from pathlib import Path

from dfseg.cli import render
from dfseg.cli.common import JSON_OPT, OVERRIDES_ARG, PROJECT_ARG, flag, load


def split(
    project: Path = PROJECT_ARG,
    overrides: list[str] | None = OVERRIDES_ARG,
    overwrite: bool = flag(False, "--overwrite", help="Replace existing split lists."),
    skip_invalid: bool = flag(
        False, "--skip-invalid", help="Split although some images cannot be read (listed)."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Split the dataset into train/val/test lists: by data.split's ratios and seed, or the
    dataset's own split folders / lists (used as they are; never mixed unless
    data.split.merge_predefined is true)."""
    config = load(project, overrides)

    from dfseg.data.project_dataset import make_split, read_project_dataset

    dataset = read_project_dataset(config.data, task=config.project.task)
    report = make_split(dataset, config.data.split, config.split_dir, overwrite, skip_invalid)
    if as_json:
        render.dump_json(report)
        return
    names = [n for n in ("train", "val", "test") if report.ratios.get(n) or report.counts.get(n)]
    columns = ["Class"] + [f"{n} img/inst" for n in names]
    rows = [
        [c.name] + [f"{c.images.get(n, 0)}/{c.instances.get(n, 0)}" for n in names]
        for c in report.classes
    ]
    rows.append(["all images"] + [str(report.counts.get(n, 0)) for n in names])
    rows.append(["backgrounds"] + [str(report.backgrounds.get(n, 0)) for n in names])
    rows.append(["ratio asked / got"] + [
        f"{report.ratios.get(n, 0):.2f} / {report.actual_ratios.get(n, 0):.2f}" for n in names
    ])  # fmt: skip
    out = render.console()
    title = (
        "Split: the dataset's own splits"
        if report.source == "predefined"
        else f"Split (seed {report.seed})"
    )
    out.print(render.table(title, columns, rows))
    if report.source == "predefined":
        render.info("used as found: " + ", ".join(f"{k} = {v}" for k, v in report.sources.items()))
    for note in report.notes:
        render.warn(note)
    for line in report.skipped:
        render.warn(f"in no split: {line}")
    out.print(f"wrote {report.out_dir}")
