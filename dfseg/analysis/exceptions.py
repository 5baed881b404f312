"""The exception type the analysis layer raises for inputs a user can fix."""

from __future__ import annotations

from dfseg.errors import DfsegError


class AnalysisError(DfsegError):
    """Bad options or inputs for bench, error analysis, batching or quantization; the message
    names what is wrong and how to fix it."""
