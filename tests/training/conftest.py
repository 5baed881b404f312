from __future__ import annotations

from pathlib import Path

import pytest
from training_fixtures import tiny_project


@pytest.fixture
def tiny_detect_project(tmp_path: Path) -> Path:
    return tiny_project(tmp_path)
