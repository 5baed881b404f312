"""Pieces every command shares: the project argument, overrides, `--json`, error handling."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import typer

from dfseg.cli import render
from dfseg.config import ProjectConfig, load_project
from dfseg.errors import DfsegError

PROJECT_ARG = typer.Argument(
    ..., help="The project file (YAML).", show_default=False, metavar="PROJECT.yaml"
)
OVERRIDES_ARG = typer.Argument(
    None,
    help="key=value overrides of the project file, e.g. train.epochs=5 model.size=n",
    show_default=False,
    metavar="[KEY=VALUE]...",
)
JSON_OPT = typer.Option(False, "--json", help="Print the report as JSON (for scripts).")

P = ParamSpec("P")
R = TypeVar("R")


def load(project: Path, overrides: list[str] | None) -> ProjectConfig:
    """Load and validate the project file; errors propagate as `ConfigError` (exit code 2)."""
    return load_project(project, overrides or [])


def user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Show user errors (`DfsegError`) as a message with exit code 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except DfsegError as exc:
            render.error(str(exc))
            raise typer.Exit(code=exc.exit_code) from None
        except KeyboardInterrupt:
            render.error("interrupted")
            raise typer.Exit(code=130) from None

    return wrapper
