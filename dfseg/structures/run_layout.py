"""The training run folder: what it holds, finding the newest one, and what a command's TARGET
argument (project file, run folder, checkpoint, export folder or model file) designates.

A run folder `<project.output>/<project.name>/exp[-N]` holds:

    project.yaml   the project as the run used it (overrides applied, paths absolute)
    train.log      the run's log, tracebacks included
    results.csv    one row per epoch
    last.pt        everything to resume (written after every epoch)
    best.pt        inference weights and the manifest
    export/<name>/ one folder per exported artifact (model file + manifest.json)

This module is the one place those names are written down; every command resolves its target
through `resolve_target`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dfseg.config import ProjectConfig, load_project
from dfseg.errors import DfsegError
from dfseg.structures.manifest import MANIFEST_FILE
from dfseg.structures.run_folders import create_numbered_dir, latest_numbered_dir

RUN_STEM = "exp"  # runs are exp, exp-2, exp-3, ...
BEST_CHECKPOINT = "best.pt"
LAST_CHECKPOINT = "last.pt"
PROJECT_FILE = "project.yaml"
TRAIN_LOG = "train.log"
RESULTS_FILE = "results.csv"
EXPORT_DIR = "export"
CHECKPOINT_FORMAT = "dfseg-checkpoint"  # the `format` tag inside best.pt and last.pt
PROJECT_SUFFIXES = (".yaml", ".yml")

Checkpoint = Literal["best", "last"]
_CHECKPOINT_FILES: dict[str, str] = {"best": BEST_CHECKPOINT, "last": LAST_CHECKPOINT}


class RunNotFoundError(DfsegError):
    """A target that names no usable run, checkpoint or artifact; the message says what was
    looked for and how to make one."""


@dataclass(frozen=True)
class RunFolder:
    """One training run folder (see the module docstring for what it holds)."""

    path: Path

    @property
    def best(self) -> Path:
        return self.path / BEST_CHECKPOINT

    @property
    def last(self) -> Path:
        return self.path / LAST_CHECKPOINT

    @property
    def project_file(self) -> Path:
        return self.path / PROJECT_FILE

    @property
    def train_log(self) -> Path:
        return self.path / TRAIN_LOG

    @property
    def results(self) -> Path:
        return self.path / RESULTS_FILE

    @property
    def export_dir(self) -> Path:
        return self.path / EXPORT_DIR

    def checkpoint(self, which: Checkpoint) -> Path:
        return self.path / _CHECKPOINT_FILES[which]

    def export_folders(self) -> list[Path]:
        """`export/<name>/` folders holding a manifest, sorted by name."""
        if not self.export_dir.is_dir():
            return []
        return sorted(p.parent for p in self.export_dir.glob(f"*/{MANIFEST_FILE}"))

    def project(self, overrides: Sequence[str] = ()) -> ProjectConfig:
        """The run's own project file (as training resolved it), with `overrides` applied."""
        if not self.project_file.is_file():
            raise RunNotFoundError(
                f"{self.project_file}: missing; the run was not made by `dfseg train`"
            )
        return load_project(self.project_file, overrides)

    @classmethod
    def create(cls, output_root: Path) -> RunFolder:
        """A new run folder (`exp`, else `exp-2`, ...): never an existing one."""
        return cls(create_numbered_dir(output_root, RUN_STEM))

    @classmethod
    def latest(cls, output_root: Path, holding: Checkpoint = "best") -> RunFolder | None:
        """The run with the highest index that holds `best.pt` (or `last.pt`): a run that
        crashed before writing it is passed over. None when there is none."""
        found = latest_numbered_dir(output_root, RUN_STEM, _CHECKPOINT_FILES[holding])
        return None if found is None else cls(found)

    @classmethod
    def containing(cls, path: Path) -> RunFolder | None:
        """The run folder `path` lies in (best.pt's or last.pt's folder, or an export below
        it), or None for a loose file."""
        for parent in [path, *path.parents][:4]:
            if parent.is_dir() and is_run_folder(parent):
                return cls(parent)
        return None


def is_run_folder(path: Path) -> bool:
    """A training run folder: it holds a best.pt or a last.pt."""
    return (path / BEST_CHECKPOINT).is_file() or (path / LAST_CHECKPOINT).is_file()


def newest_run(output_root: Path, holding: Checkpoint = "best", what: str = "") -> RunFolder:
    """`RunFolder.latest`, or an error that says how to make one."""
    run = RunFolder.latest(output_root, holding)
    if run is None:
        file = _CHECKPOINT_FILES[holding]
        where = f"{what}: " if what else ""
        raise RunNotFoundError(
            f"{where}no trained run (a folder {RUN_STEM}, {RUN_STEM}-2, ... with a {file}) "
            f"under {output_root}; train one with `dfseg train`"
        )
    return run


@dataclass(frozen=True)
class Target:
    """What a TARGET argument designates.

    Attributes:
        given: the argument as given.
        run: the run folder it is or lies in (None for a loose file).
        file: the file or export folder named explicitly (None when a project or a run folder
            was given).
        config: the project file given, loaded with the overrides (None for other targets).
        overrides: `key=value` overrides, applied to whichever project `project()` returns.
    """

    given: Path
    run: RunFolder | None
    file: Path | None
    config: ProjectConfig | None = None
    overrides: tuple[str, ...] = ()

    def project(self) -> ProjectConfig | None:
        """The project file given, else the run's own project.yaml (None without one). Loaded
        on demand: inference from a run needs no project."""
        if self.config is not None:
            return self.config
        if self.run is not None and self.run.project_file.is_file():
            return self.run.project(self.overrides)
        return None

    def checkpoint(self, which: Checkpoint = "best") -> Path:
        """The checkpoint named, else the run's best.pt (or last.pt)."""
        if self.file is not None and self.file.is_file():
            return self.file
        if self.run is None:
            raise RunNotFoundError(f"{self.given}: not a checkpoint or a run folder")
        path = self.run.checkpoint(which)
        if not path.is_file():
            raise RunNotFoundError(
                f"{path}: not found; give a run folder that holds {path.name} (or the file)"
            )
        return path

    def require_run(self) -> tuple[RunFolder, ProjectConfig]:
        """The run and its project, for commands that work on a whole run."""
        if self.run is None:
            raise RunNotFoundError(
                f"{self.given}: not a run folder (no best.pt); give a run such as "
                "runs/<name>/exp or the project file"
            )
        project = self.project()
        if project is None:
            project = self.run.project()  # raises: the run has no project.yaml
        return self.run, project


def resolve_target(
    target: Path | str, overrides: Sequence[str] = (), holding: Checkpoint = "best"
) -> Target:
    """What a command's TARGET argument means.

    Args:
        target: a project file (its newest run holding `holding`); a run folder; a folder of
            runs (its newest run); a checkpoint or model file, or an export folder (the run they
            lie in, if any).
        overrides: `key=value` overrides of the project; they need a project (the file given,
            or the run's project.yaml).
        holding: "best" or "last": which checkpoint makes a folder the newest run.

    Raises:
        RunNotFoundError: nothing there, or overrides without a project.
        ConfigError: an invalid project file or override.
    """
    given = Path(target).expanduser()
    overrides = tuple(overrides)
    if given.suffix.lower() in PROJECT_SUFFIXES:
        config = load_project(given, overrides)
        return Target(given, newest_run(config.output_root, holding, str(given)), None, config)
    if not given.exists():
        raise RunNotFoundError(f"{given}: no such file or folder")
    run: RunFolder | None
    file: Path | None = None
    if given.is_dir() and not is_run_folder(given) and not (given / MANIFEST_FILE).is_file():
        run = newest_run(given, holding, str(given))  # a folder of runs
    else:
        run = RunFolder.containing(given)
        file = None if run is not None and run.path == given else given
    if overrides and (run is None or not run.project_file.is_file()):
        raise RunNotFoundError(
            f"{given}: key=value overrides need a project file; none was found beside it"
        )
    return Target(given, run, file, None, overrides)
