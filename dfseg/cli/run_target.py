"""The `[PROJECT.yaml | RUN]` argument of bench, errors, batching and quantize: a project file
means its newest run; a run folder brings its own resolved project file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from dfseg.cli.common import load
from dfseg.config import ProjectConfig
from dfseg.errors import DfsegError

if TYPE_CHECKING:
    from dfseg.analysis.split_data import SplitImages
    from dfseg.structures.manifest import ArtifactManifest

RUN_ARG = typer.Argument(
    ...,
    help="A project file (its newest run) or a run folder (runs/<name>/exp-N).",
    show_default=False,
    metavar="PROJECT.yaml|RUN",
)
RUN_PROJECT_FILE = "project.yaml"  # written into every run by `dfseg train`


class RunNotFoundError(DfsegError):
    """The argument names neither a project file with a trained run nor a run folder."""


@dataclass(frozen=True)
class RunTarget:
    """A trained run and the project it was trained with."""

    config: ProjectConfig
    run_dir: Path


def resolve_run(target: Path, overrides: list[str] | None) -> RunTarget:
    """The run `target` designates, with `overrides` applied to its project."""
    from dfseg.runtime.artifacts import is_run_dir, latest_run_dir

    if target.is_dir():
        if not is_run_dir(target):
            raise RunNotFoundError(
                f"{target}: not a run folder (no best.pt); give a run such as "
                "runs/<name>/exp or the project file"
            )
        project = target / RUN_PROJECT_FILE
        if not project.is_file():
            raise RunNotFoundError(f"{project}: missing; the run was not made by `dfseg train`")
        return RunTarget(load(project, overrides), target)
    config = load(target, overrides)
    run = latest_run_dir(config.output_root)
    if run is None:
        raise RunNotFoundError(
            f"no trained run (exp, exp-2, ... with a best.pt) under {config.output_root}; "
            f"train one with `dfseg train {target}`"
        )
    return RunTarget(config, run)


def split_images(target: RunTarget, split: str, max_images: int | None = None) -> SplitImages:
    """One split of the run's dataset ("auto": test when it has images, else val)."""
    from dfseg.analysis.split_data import load_split_images

    config = target.config
    return load_split_images(
        config.data.path,
        config.data.format,
        config.class_names or None,
        config.split_dir,
        split,  # type: ignore[arg-type]
        config.project.task,
        config.data.annotations,
        max_images,
    )


def run_manifest(target: RunTarget) -> ArtifactManifest:
    """The manifest of the run's best.pt (classes, task, tuned threshold), without building the
    model."""
    from dfseg.nn.trained import read_trained_manifest
    from dfseg.runtime.artifacts import BEST_CHECKPOINT
    from dfseg.training.checkpoint_io import load_payload

    best = target.run_dir / BEST_CHECKPOINT
    return read_trained_manifest(load_payload(best), best)
