"""Where analysis results go: a new folder in the run (`bench`, `bench-2`, ...), never reused."""

from __future__ import annotations

from pathlib import Path


def create_output_dir(run_dir: Path, stem: str) -> Path:
    """Create and return the next free `<run_dir>/<stem>` folder (`stem`, `stem-2`, ...).

    `mkdir` without exist_ok makes the choice atomic: two commands started at once never share a
    folder, and earlier results are never overwritten.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    index = 1
    while True:
        candidate = run_dir / (stem if index == 1 else f"{stem}-{index}")
        try:
            candidate.mkdir()
        except FileExistsError:
            index += 1
            continue
        return candidate
