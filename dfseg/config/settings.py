"""Machine-level settings from `DFSEG_*` environment variables (not from the project file).

Read when a command starts (`get_settings()`), never at import time, so tests and scripts can set
the environment first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_workers() -> int:
    return min(4, os.cpu_count() or 1)


class Settings(BaseSettings):
    """`DFSEG_DEVICE`, `DFSEG_WORKERS`, `DFSEG_CACHE_DIR`, `DFSEG_COLOR`, `DFSEG_THREADS`."""

    model_config = SettingsConfigDict(env_prefix="DFSEG_", extra="ignore")

    device: str = Field("auto", description="auto, cpu, cuda or cuda:N.")
    workers: int = Field(default_factory=_default_workers, ge=0)
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "dfseg")
    color: Literal["auto", "always", "never"] = "auto"
    threads: int | None = Field(None, gt=0, description="torch CPU threads; null: torch default.")


def get_settings() -> Settings:
    """Settings as the environment says now."""
    return Settings()
