"""Progress events: how library layers report long work without printing.

A library function takes `progress: ProgressCallback | None`; the CLI turns the events into a Rich
progress bar with ETA on a terminal, or plain periodic log lines otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProgressEvent:
    """`completed` of `total` units of `task` are done (total None: unknown).

    `info` carries live numbers to show beside the bar (losses, it/s, ...); `message` a one-off
    note (a warning, a finished stage) that the renderer prints as a line.
    """

    task: str
    completed: int
    total: int | None = None
    info: dict[str, float | str] = field(default_factory=dict)
    message: str | None = None


ProgressCallback = Callable[[ProgressEvent], None]


def report(progress: ProgressCallback | None, event: ProgressEvent) -> None:
    """Send `event` when a callback was given."""
    if progress is not None:
        progress(event)
