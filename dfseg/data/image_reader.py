"""Decoding dataset images once per sample, and remembering the ones that broke after the scan.

An image can disappear or get corrupted between the dataset scan and the epoch that reads it.
Training must not crash for that: the dataset swaps in another sample and logs ONE warning per
path. The "already warned" flags live in shared memory so DataLoader worker processes (forked or
spawned) and the main process agree: one warning per path in total, not one per worker, and the
main process leaves known-broken images out of later epochs.
"""

from __future__ import annotations

import logging
import multiprocessing
from multiprocessing.context import get_spawning_popen
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dfseg.errors import DfsegError

logger = logging.getLogger("dfseg.data")


class UnreadableImageError(DfsegError):
    """An image file cannot be decoded, or no longer matches its annotation."""


def read_image_rgb(path: Path, expected_hw: tuple[int, int] | None = None) -> np.ndarray:
    """Decode an image file.

    Args:
        path: the image file.
        expected_hw: (height, width) the dataset scan recorded; a different size means the file
            changed and its labels no longer line up.

    Returns:
        [H, W, 3] uint8 RGB, EXIF orientation applied (as the format readers measure sizes).

    Raises:
        UnreadableImageError: the file is missing, undecodable or has changed size.
    """
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # [H, W, 3] BGR
    if image is None:
        raise UnreadableImageError(
            f"{path}: cannot be read or decoded (deleted, moved or corrupted after the dataset "
            "scan); run `dfseg check` to rescan the dataset"
        )
    if expected_hw is not None and tuple(image.shape[:2]) != tuple(expected_hw):
        height, width = image.shape[:2]
        raise UnreadableImageError(
            f"{path}: is now {width}x{height} (WxH) but was {expected_hw[1]}x{expected_hw[0]} "
            "when the dataset was scanned, so its labels no longer line up; rescan the dataset"
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=image)


class BrokenImageRegistry:
    """Shared-memory flags, one per dataset image: set once the image failed to load.

    Args:
        num_images: dataset size.
    """

    def __init__(self, num_images: int) -> None:
        self._flags = multiprocessing.RawArray("b", max(num_images, 1))

    def __reduce__(self) -> tuple[Any, ...]:
        # Shared ctypes arrays only pickle while a process is being started (that is how the
        # flags reach DataLoader workers); any other copy gets its own snapshot of the flags.
        if get_spawning_popen() is not None:
            return (_shared_registry, (self._flags,))
        return (_registry_from_snapshot, (bytes(self._flags),))

    def is_broken(self, index: int) -> bool:
        return bool(self._flags[index])

    def broken_indices(self) -> np.ndarray:
        """[K] int64 indices of the images known to be broken."""
        return np.flatnonzero(np.frombuffer(self._flags, dtype=np.int8)).astype(np.int64)

    def report(self, index: int, error: UnreadableImageError) -> None:
        """Flag an image and log its warning, unless some process already did."""
        if self._flags[index]:
            return
        self._flags[index] = 1
        logger.warning("skipping an image that cannot be used: %s", error)


def _shared_registry(flags: Any) -> BrokenImageRegistry:
    registry = BrokenImageRegistry.__new__(BrokenImageRegistry)
    registry._flags = flags
    return registry


def _registry_from_snapshot(flags: bytes) -> BrokenImageRegistry:
    return _shared_registry(multiprocessing.RawArray("b", flags))
