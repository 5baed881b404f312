"""The optional packages serving needs, checked before use with a message naming the extra."""

from __future__ import annotations

import importlib.util

from dfseg.errors import DfsegError

EXTRAS = {"serve": ("fastapi", "uvicorn"), "app": ("gradio",)}


class MissingExtraError(DfsegError):
    """An optional package of a command is not installed."""


def require(extra: str) -> None:
    """Raise `MissingExtraError` unless every package of `extra` is importable."""
    missing = [name for name in EXTRAS[extra] if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(
            f"this command needs {', '.join(missing)}: pip install 'dfseg[{extra}]'"
        )
