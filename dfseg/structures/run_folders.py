"""Numbered output folders: `exp`, `exp-2`, `exp-3`, ... created atomically, never reused.

Training runs, validation, inference, bench, errors and batching results all live in such
folders, so this one module decides how they are named, created and found again.
"""

from __future__ import annotations

import re
from pathlib import Path

RUN_STEM = "exp"  # training runs: exp, exp-2, ...
_NUMBERED = re.compile(r"^(?P<stem>.+?)(?:-(?P<index>\d+))?$")


def create_numbered_dir(parent: Path, stem: str) -> Path:
    """Create and return the next free `<parent>/<stem>` folder (`stem`, then `stem-2`, ...).

    `mkdir` without exist_ok makes the choice atomic: two commands started at once never share a
    folder, and an existing folder (earlier results) is never written into.
    """
    parent.mkdir(parents=True, exist_ok=True)
    index = 1
    while True:
        candidate = parent / (stem if index == 1 else f"{stem}-{index}")
        try:
            candidate.mkdir()
        except FileExistsError:
            index += 1
            continue
        return candidate


def latest_numbered_dir(parent: Path, stem: str, holding: str) -> Path | None:
    """The `<stem>[-N]` folder under `parent` with the highest N that holds the file `holding`.

    Folders without that file (a run that crashed before its first checkpoint) are passed over;
    None when there is no such folder.
    """
    if not parent.is_dir():
        return None
    found: list[tuple[int, Path]] = []
    for child in parent.iterdir():
        match = _NUMBERED.match(child.name)
        if match and match["stem"] == stem and (child / holding).is_file():
            found.append((int(match["index"] or 1), child))
    return max(found)[1] if found else None
