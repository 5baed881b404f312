"""Base model shared by every project-file section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo


class Section(BaseModel):
    """A project-file section: unknown keys are errors, values are re-validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def resolve_path(value: Any, info: ValidationInfo) -> Any:
    """Make a relative path absolute against the project file's folder (`base_dir` in context).

    Without a context (a section built in Python) the path is kept as given.
    """
    if value is None or not isinstance(value, str | Path):
        return value
    path = Path(value).expanduser()
    base_dir = (info.context or {}).get("base_dir")
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    return path
