"""Fake runs (no training) shared by the runtime tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from run_builder import write_run


@pytest.fixture(scope="session")
def segment_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run folder of a fake N segmentation run (stretch resize, 256 px)."""
    return write_run(tmp_path_factory.mktemp("runtime-segment"), task="segment")[1]


@pytest.fixture(scope="session")
def letterbox_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run folder of a fake N detection run with letterboxing (keep_ratio), 320 px."""
    root = tmp_path_factory.mktemp("runtime-letterbox")
    return write_run(root, task="detect", keep_ratio=True, image_hw=(192, 320), size=320)[1]
