"""Training run folders: `exp`, `exp-2`, ... under the project's output root, never reused."""

from __future__ import annotations

from pathlib import Path

from dfseg.structures.run_folders import RUN_STEM, create_numbered_dir, latest_numbered_dir
from dfseg.training.artifacts import LAST_CHECKPOINT


def create_run_dir(root: Path, stem: str = RUN_STEM) -> Path:
    """Create and return the next free run folder (`exp`, then `exp-2`, ...)."""
    return create_numbered_dir(root, stem)


def latest_run_dir(root: Path, stem: str = RUN_STEM) -> Path | None:
    """The newest run folder that can be resumed (it holds a last.pt), or None."""
    return latest_numbered_dir(root, stem, LAST_CHECKPOINT)
