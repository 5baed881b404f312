"""Shared fixtures. `../shared` (reference checkpoints, real datasets) is optional: tests that need
it use the `shared_dir` fixture and skip cleanly when it is absent (a user's clone has none)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_root() -> Path:
    override = os.environ.get("DFSEG_SHARED_DIR")
    return Path(override) if override else REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The `../shared` folder beside the checkout; skips the test when it is absent."""
    root = _shared_root()
    if not root.is_dir():
        pytest.skip(f"{root} not present (reference files and real datasets are optional)")
    return root


@pytest.fixture(scope="session")
def reference_dir(shared_dir: Path) -> Path:
    """`../shared/reference/dfine`: official D-FINE checkpoints and expected outputs."""
    path = shared_dir / "reference" / "dfine"
    if not path.is_dir():
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture(scope="session")
def shared_data_dir(shared_dir: Path) -> Path:
    """`../shared/data`: small real datasets (YOLO-seg, VOC, COCO)."""
    path = shared_dir / "data"
    if not path.is_dir():
        pytest.skip(f"{path} not present")
    return path
