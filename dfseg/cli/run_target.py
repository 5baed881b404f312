"""The `[PROJECT.yaml | RUN]` argument of bench, errors, batching and quantize: a project file
means its newest run; a run folder brings its own resolved project file (resolved by
`dfseg.structures.run_layout.resolve_target`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from dfseg.config import ProjectConfig
    from dfseg.structures.run_layout import RunFolder

RUN_ARG = typer.Argument(
    ...,
    help="A project file (its newest run) or a run folder (runs/<name>/exp-N).",
    show_default=False,
    metavar="PROJECT.yaml|RUN",
)
MODEL_ARG = typer.Argument(
    ...,
    help="A model file (.pt, .onnx, .xml, .engine), an export folder, a run folder or a project "
    "file (its newest run).",
    show_default=False,
    metavar="ARTIFACT|RUN|PROJECT.yaml",
)
"""The model argument of serve, app and profile (resolved by `resolve_artifact`)."""


def resolve_run(target: Path, overrides: list[str] | None) -> tuple[RunFolder, ProjectConfig]:
    """The run `target` designates and its project, with `overrides` applied."""
    from dfseg.structures.run_layout import resolve_target

    return resolve_target(target, overrides or []).require_run()
