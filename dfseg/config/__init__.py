"""The project file: `ProjectConfig` and its sections, loading with overrides, machine settings.

Imports no torch, so `dfseg --help` and configuration errors are instant.
"""

from dfseg.config.errors import ConfigError, ConfigProblem
from dfseg.config.loader import load_project, validate_project
from dfseg.config.project import DataSection, ModelSection, ProjectConfig, ProjectSection
from dfseg.config.settings import Settings, get_settings

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
