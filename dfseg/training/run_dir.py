"""Run folders: `exp`, `exp-2`, `exp-3`, ... under the project's output root, never reused."""

from __future__ import annotations

import re
from pathlib import Path

_RUN_PATTERN = re.compile(r"^(?P<stem>.+?)(?:-(?P<index>\d+))?$")


def create_run_dir(root: Path, stem: str = "exp") -> Path:
    """Create and return the next free run folder (`exp`, then `exp-2`, ...).

    Creation is atomic (`mkdir` without exist_ok), so two runs started at once never share a
    folder, and an existing folder is never written into.
    """
    root.mkdir(parents=True, exist_ok=True)
    index = 1
    while True:
        candidate = root / (stem if index == 1 else f"{stem}-{index}")
        try:
            candidate.mkdir()
        except FileExistsError:
            index += 1
            continue
        return candidate


def latest_run_dir(root: Path, stem: str = "exp") -> Path | None:
    """The run folder with the highest index that holds a `last.pt` (None if there is none)."""
    runs: list[tuple[int, Path]] = []
    if not root.is_dir():
        return None
    for child in root.iterdir():
        match = _RUN_PATTERN.match(child.name)
        if child.is_dir() and match and match["stem"] == stem and (child / "last.pt").exists():
            runs.append((int(match["index"] or 1), child))
    return max(runs)[1] if runs else None
