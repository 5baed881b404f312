"""Pieces every command shares: the project argument, overrides, `--json`, error handling."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer

from dfseg.cli import render
from dfseg.errors import DfsegError

if TYPE_CHECKING:  # imported when a command runs: `dfseg --help` needs neither
    from pydantic import BaseModel

    from dfseg.config import ProjectConfig

PROJECT_ARG = typer.Argument(
    ..., help="The project file (YAML).", show_default=False, metavar="PROJECT.yaml"
)
OVERRIDES_ARG = typer.Argument(
    None,
    help="key=value overrides of the project file, e.g. train.epochs=5 model.size=n",
    show_default=False,
    metavar="[KEY=VALUE]...",
)


def flag(default: bool | None, *names: str, **options: Any) -> Any:
    """A typer option for an on/off switch, shown without a `<bool>` type in --help."""
    return typer.Option(default, *names, metavar="", **options)


JSON_OPT = flag(False, "--json", help="Print the report as JSON (for scripts).")

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound="BaseModel")


def load(project: Path, overrides: list[str] | None) -> ProjectConfig:
    """Load and validate the project file; errors propagate as `ConfigError` (exit code 2)."""
    from dfseg.config import load_project

    return load_project(project, overrides or [])


def show(report: M, as_json: bool, render_report: Callable[[M], None]) -> M:
    """Print a library report: as JSON for scripts, else as tables; exit 1 when it has a
    `passed` flag that is False (a gate a CI job should notice)."""
    if as_json:
        render.dump_json(report)
    else:
        render_report(report)
    if getattr(report, "passed", True) is False:
        raise typer.Exit(code=1)
    return report


def cpu_threads(option: int | None, what: str, device: str | None = None) -> int:
    """The CPU threads of a command: --threads, else DFSEG_THREADS, else the cores other
    processes leave free (see `dfseg.runtime.threads`); shown on stderr as the start banner."""
    from dfseg.config.settings import get_settings
    from dfseg.runtime.threads import choose_threads, cpu_model

    choice = choose_threads(option if option is not None else get_settings().threads)
    on = device or "cpu"
    render.info(f"{what} on {on} ({cpu_model()}): {choice.describe()}")
    return choice.threads


def user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Show user errors (`DfsegError`) as a message with exit code 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except DfsegError as exc:
            _report_error(str(exc), type(exc).__name__, exc.exit_code, bool(kwargs.get("as_json")))
            raise typer.Exit(code=exc.exit_code) from None
        except KeyboardInterrupt:
            _report_error("interrupted", "KeyboardInterrupt", 130, bool(kwargs.get("as_json")))
            raise typer.Exit(code=130) from None

    return wrapper


def _report_error(message: str, kind: str, exit_code: int, as_json: bool) -> None:
    """The error on stderr; with --json also a JSON object on stdout, for scripts that parse it:
    `{"error": {"type": ..., "message": ..., "exit_code": ...}}`."""
    render.error(message)
    if as_json:
        render.dump_json({"error": {"type": kind, "message": message, "exit_code": exit_code}})
