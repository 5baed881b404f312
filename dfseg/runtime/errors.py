"""Errors of the inference runtime: each names the file and how to fix the problem."""

from __future__ import annotations

from dfseg.errors import DfsegError


class ArtifactError(DfsegError):
    """A model artifact that cannot be found, recognised or used as asked."""


class ImageReadError(DfsegError):
    """An image (or video) that cannot be read or decoded."""


class BackendError(DfsegError):
    """A backend that cannot run the artifact (wrong batch or size, unsupported option)."""
