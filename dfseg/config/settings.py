"""Machine-level settings from `DFSEG_*` environment variables (not from the project file).

Read when a command starts (`get_settings()`), never at import time, so tests and scripts can set
the environment first. A bad value is a `SettingsError` naming the variable, its value and what
it takes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dfseg.errors import DfsegError

ENV_PREFIX = "DFSEG_"


class SettingsError(DfsegError):
    """A `DFSEG_*` environment variable has a value dfseg cannot use."""


def _default_workers() -> int:
    return min(4, os.cpu_count() or 1)


class Settings(BaseModel):
    """`DFSEG_DEVICE`, `DFSEG_WORKERS`, `DFSEG_CACHE_DIR`, `DFSEG_COLOR`, `DFSEG_THREADS`."""

    model_config = ConfigDict(frozen=True)

    device: str = Field("auto", description="auto, cpu, cuda or cuda:N.")
    workers: int = Field(default_factory=_default_workers, ge=0)
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "dfseg")
    color: Literal["auto", "always", "never"] = "auto"
    threads: int | None = Field(
        None, gt=0, description="torch CPU threads; unset: one per core other processes leave free."
    )


def get_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings as the environment (`environ`, default os.environ) says now.

    Raises:
        SettingsError: a variable's value does not fit (the message names it).
    """
    environ = os.environ if environ is None else environ
    values = {
        name: environ[ENV_PREFIX + name.upper()]
        for name in Settings.model_fields
        if environ.get(ENV_PREFIX + name.upper(), "") != ""
    }
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{str(error['loc'][0]).upper()}={values[str(error['loc'][0])]!r}: "
            f"{error['msg']}"
            for error in exc.errors()
        )
        raise SettingsError(
            f"environment: {problems}. Fix or unset the variable (see the README's settings)."
        ) from None
