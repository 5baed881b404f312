"""Everything the CLI draws: consoles, messages, tables, JSON and progress.

Progress is a Rich bar with ETA on a terminal, and plain periodic lines otherwise (CI logs), fed by
the library's `ProgressEvent`s.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from functools import cache
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

if TYPE_CHECKING:
    from pydantic import BaseModel

    from dfseg.structures.progress import ProgressEvent


def _console_kwargs(stream: Any) -> dict[str, Any]:
    """Colour from DFSEG_COLOR; logs and pipes get wide lines (tables stay readable in CI)."""
    extra: dict[str, Any] = {}
    if not stream.isatty() and "COLUMNS" not in os.environ:
        extra["width"] = 160
    return {**_color_kwargs(), **extra}


def _color_kwargs() -> dict[str, Any]:
    from dfseg.config.settings import SettingsError, get_settings  # pydantic: not for --help

    try:
        color = get_settings().color
    except SettingsError:  # the command reports it; its message still needs a console
        color = "auto"
    if color == "never":
        return {"no_color": True, "highlight": False}
    if color == "always":
        return {"force_terminal": True, "highlight": False}
    return {"highlight": False}


@cache
def console() -> Console:
    """Standard output: results, tables."""
    return Console(**_console_kwargs(sys.stdout))


@cache
def err_console() -> Console:
    """Standard error: errors, warnings, progress."""
    return Console(stderr=True, **_console_kwargs(sys.stderr))


def error(message: str) -> None:
    err_console().print(
        f"[bold red]error:[/] {message}", markup=True, highlight=False, soft_wrap=True
    )


def warn(message: str) -> None:
    err_console().print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


def info(message: str) -> None:
    err_console().print(message, highlight=False, soft_wrap=True)


def dump_json(value: BaseModel | dict[str, Any] | list[Any]) -> None:
    """Machine-readable output on stdout (for `--json`); nothing else goes to stdout then."""
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        text = value.model_dump_json(indent=2)
    else:
        text = json.dumps(value, indent=2, default=str)
    print(text)


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    numeric_from: int = 1,
) -> Table:
    """A Rich table; columns from index `numeric_from` are right-aligned."""
    result = Table(title=title, title_justify="left", header_style="bold")
    for index, column in enumerate(columns):
        result.add_column(column, justify="right" if index >= numeric_from else "left")
    for row in rows:
        result.add_row(*(_cell(v) for v in row))
    return result


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


class ProgressRenderer:
    """Turns `ProgressEvent`s into a live bar (terminal) or periodic plain lines (logs).

    Use as a context manager and pass the instance as the library's `progress` callback.
    """

    def __init__(self, interval_s: float = 15.0, force_plain: bool = False) -> None:
        self._console = err_console()
        self._plain = force_plain or not self._console.is_terminal
        self._interval_s = interval_s
        self._bar: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._last_line: dict[str, float] = {}
        self._started: dict[str, float] = {}
        self._completed: dict[str, int] = {}
        self._finished: set[str] = set()

    def __enter__(self) -> ProgressRenderer:
        if not self._plain:
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=self._console,
                transient=False,
            )
            self._bar.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)

    def print(self, renderable: Any) -> None:
        """Print above the live bars (or as plain output when there are none)."""
        self._console.print(renderable, highlight=False, soft_wrap=True)

    def __call__(self, event: ProgressEvent) -> None:
        if event.message:
            self._console.print(event.message, highlight=False, soft_wrap=True)
        restarted = self._restarted(event)
        if self._bar is not None:
            self._update_bar(event, restarted)
        else:
            self._maybe_print_line(event, restarted)

    def _restarted(self, event: ProgressEvent) -> bool:
        """A new run of a task (the next epoch's validation, say): it never ran, it went
        backwards, or its last run was complete. Its elapsed time and ETA start again."""
        task = event.task
        new = (
            task not in self._completed
            or event.completed < self._completed[task]
            or task in self._finished
        )
        self._completed[task] = event.completed
        if event.total is not None and event.completed >= event.total:
            self._finished.add(task)
        else:
            self._finished.discard(task)
        return new

    def _update_bar(self, event: ProgressEvent, restarted: bool) -> None:
        assert self._bar is not None
        text = _format_info(event.info)
        task_id = self._tasks.get(event.task)
        if task_id is None or restarted:
            task_id = self._bar.add_task(event.task, total=event.total, info=text)
            self._tasks[event.task] = task_id
        self._bar.update(task_id, completed=event.completed, total=event.total, info=text)

    def _maybe_print_line(self, event: ProgressEvent, restarted: bool) -> None:
        now = time.monotonic()
        if restarted:
            self._started[event.task] = now
            self._last_line.pop(event.task, None)
        done = event.total is not None and event.completed >= event.total
        last = self._last_line.get(event.task, self._started[event.task])
        elapsed = now - self._started[event.task]
        # Quick work prints nothing; longer work a line per interval and one when it finishes.
        if now - last < self._interval_s and not (done and elapsed >= 1.0):
            return
        self._last_line[event.task] = now
        parts = [f"{event.task}: {event.completed}" + (f"/{event.total}" if event.total else "")]
        if event.total and event.completed:
            remaining = elapsed / event.completed * (event.total - event.completed)
            parts.append(f"{100 * event.completed / event.total:.0f}%")
            parts.append(f"elapsed {_duration(elapsed)}, ETA {_duration(remaining)}")
        text = _format_info(event.info)
        if text:
            parts.append(text)
        self._console.print("  ".join(parts), highlight=False, soft_wrap=True)


def _format_info(values: dict[str, float | str]) -> str:
    return "  ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
    )


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def eval_table(report: Any, title: str | None = None, max_classes: int | None = None) -> Table:
    """The validation table (Class, Images, Instances, then P, R, mAP50, mAP50-95 for Box and,
    for segmentation, Mask), from a `dfseg.metrics.EvalReport`: the "all" row, then every class,
    or the `max_classes` with the most instances (the caption says how many are left out).
    A semantic report gets `semantic_table`."""
    if getattr(report, "task", None) == "semantic" and hasattr(report, "miou"):
        return semantic_table(report, title, max_classes)
    groups = report.metric_groups
    columns = ["Class", "Images", "Instances"]
    for group in groups:
        tag = "Box" if group == "box" else "Mask"
        columns += [f"{tag} P", f"{tag} R", f"{tag} mAP50", f"{tag} mAP50-95"]
    classes = list(report.classes)
    if max_classes is not None and len(classes) > max_classes:
        classes = sorted(classes, key=lambda row: -row.instances)[:max_classes]
    rows = []
    for row in [report.overall, *classes]:
        cells: list[Any] = [row.name, row.images, row.instances]
        for group in groups:
            metrics = getattr(row, group)
            cells += [metrics.precision, metrics.recall, metrics.map50, metrics.map50_95]
        rows.append(cells)
    caption = f"P and R at confidence {report.threshold:.3f}"
    if len(classes) < len(report.classes):
        left = len(report.classes) - len(classes)
        caption += f"; the {len(classes)} classes with most instances shown, {left} more at the end"
    if report.mask_instances_left_out:
        caption += (
            f"; mask metrics leave out {report.mask_instances_left_out} objects labelled with "
            "a box only (counted in the box metrics)"
        )
    result = table(title, columns, rows)
    result.caption = caption
    return result


def semantic_table(report: Any, title: str | None = None, max_classes: int | None = None) -> Table:
    """The semantic validation table from a `dfseg.metrics.semantic.SemanticReport`: the "all"
    row (mIoU, mPA, mean precision), then every class or the `max_classes` with most pixels."""
    classes = list(report.classes)
    if max_classes is not None and len(classes) > max_classes:
        classes = sorted(classes, key=lambda row: -row.gt_pixels)[:max_classes]
    rows: list[list[Any]] = [
        ["all", report.images, 1.0, report.miou, report.mpa, report.mean_precision]
    ]
    rows += [
        [row.name, row.images, row.pixel_share, row.iou, row.accuracy, row.precision]
        for row in classes
    ]
    result = table(title, ["Class", "Images", "Pixels", "IoU", "Acc", "Precision"], rows)
    result.caption = (
        f"pixel accuracy {report.pixel_accuracy:.3f}, frequency-weighted IoU {report.fwiou:.3f}; "
        "Pixels: share of the labelled pixels; Acc: per-class pixel accuracy (recall)"
    )
    if len(classes) < len(report.classes):
        result.caption += f"; {len(classes)} of {len(report.classes)} classes shown"
    return result
