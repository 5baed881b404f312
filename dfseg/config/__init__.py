"""The project file: `ProjectConfig` and its sections, loading with overrides, machine settings.

Imports no torch, so `dfseg --help` and configuration errors are instant. The names below are
loaded on first use (`dfseg.config.deploy`, say, can be imported without the rest).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dfseg.config.errors import ConfigError, ConfigProblem
    from dfseg.config.loader import load_project, validate_project
    from dfseg.config.project import DataSection, ModelSection, ProjectConfig, ProjectSection
    from dfseg.config.settings import Settings, get_settings

_EXPORTS = {
    "ConfigError": "dfseg.config.errors",
    "ConfigProblem": "dfseg.config.errors",
    "DataSection": "dfseg.config.project",
    "ModelSection": "dfseg.config.project",
    "ProjectConfig": "dfseg.config.project",
    "ProjectSection": "dfseg.config.project",
    "Settings": "dfseg.config.settings",
    "get_settings": "dfseg.config.settings",
    "load_project": "dfseg.config.loader",
    "validate_project": "dfseg.config.loader",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'dfseg.config' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


__all__ = [
    "ConfigError",
    "ConfigProblem",
    "DataSection",
    "ModelSection",
    "ProjectConfig",
    "ProjectSection",
    "Settings",
    "get_settings",
    "load_project",
    "validate_project",
]
