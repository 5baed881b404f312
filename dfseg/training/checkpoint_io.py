"""Atomic, code-free checkpoint files.

Checkpoints hold only tensors and plain Python types, so they load with
`torch.load(weights_only=True)`; they are written to a temporary file and renamed, so a crash
mid-write never leaves a truncated `last.pt`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from dfseg.errors import DfsegError


class CheckpointFileError(DfsegError):
    """A checkpoint that cannot be read."""


def save_atomic(payload: dict[str, Any], path: Path) -> None:
    """`torch.save` to a temporary file in the same folder, fsync, then rename over `path`.

    The file gets the permissions of any other file the run writes (0644 under the usual umask;
    the temporary file's own 0600 would make best.pt unreadable to a colleague or a server)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fchmod(handle.fileno(), 0o666 & ~_umask())
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask (read by setting it, then putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def load_payload(path: Path) -> dict[str, Any]:
    """Load a checkpoint safely (weights only); clear errors for missing or foreign files."""
    if not path.is_file():
        raise CheckpointFileError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or truncated files
        raise CheckpointFileError(
            f"{path}: not a readable checkpoint ({type(exc).__name__}: {str(exc)[:200]})"
        ) from None
    if not isinstance(payload, dict):
        raise CheckpointFileError(
            f"{path}: expected a dict checkpoint, got {type(payload).__name__}"
        )
    return payload
