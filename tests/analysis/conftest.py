from __future__ import annotations

from pathlib import Path

import pytest
from run_fixtures import trained_tiny_run


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(project file, run folder) of a tiny detection run."""
    return trained_tiny_run(tmp_path_factory)
