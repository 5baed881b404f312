"""Errors of `dfseg export`."""

from __future__ import annotations

from dfseg.errors import DfsegError


class ExportError(DfsegError):
    """An export that cannot be made as asked (bad option, existing folder, failed conversion)."""
