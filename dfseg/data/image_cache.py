"""Decoded training images kept between epochs: in RAM, or as `.npy` files on disk.

Each image is stored as the dataset would decode it for its largest use in training (the largest
input size and mosaic zoom: JPEGs at 1/2..1/8 size where that still suffices, see
`decode_reduction`), so a cached sample is the uncached one, or for a smaller use (a batch at a
smaller multiscale size, a single image in a mosaic run) made from a finer decode. Disk entries
are named by the SHA-1 of the image file's bytes and the reduction: an image that changes gets
a new entry and is never served stale; entries of images that are gone are simply not used.

RAM caches are filled in the main process before the DataLoader starts; forked workers share
the arrays copy-on-write (spawned workers, as on macOS and Windows, get a copy each). A RAM
cache that would take more than `RAM_SHARE` of the available memory is refused with the numbers.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from dfseg.data.image_reader import UnreadableImageError, read_image_rgb
from dfseg.errors import DfsegError
from dfseg.structures import ImageAnnotation

CacheMode = Literal["none", "ram", "disk"]
RAM_SHARE = 0.7


class CacheError(DfsegError):
    """The image cache cannot be built as asked."""


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux MemAvailable; None elsewhere)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cached_bytes(annotation: ImageAnnotation, reduction: int) -> int:
    """Bytes of one image decoded at 1/reduction size (RGB uint8)."""
    return -(-annotation.height // reduction) * -(-annotation.width // reduction) * 3


class ImageCache:
    """Decoded images by dataset index, each with its decode reduction.

    Args:
        mode: "ram" or "disk".
        folder: where disk entries live (created); unused for "ram".
    """

    def __init__(self, mode: CacheMode, folder: Path | None = None) -> None:
        if mode == "disk" and folder is None:
            raise CacheError("data.cache: disk needs a cache folder")
        self.mode, self.folder = mode, folder
        self._images: dict[int, np.ndarray] = {}
        self._files: dict[int, Path] = {}
        self.reductions: dict[int, int] = {}

    def get(self, index: int) -> tuple[np.ndarray, int] | None:
        """(image [h, w, 3] uint8 RGB, reduction), or None when the image is not cached."""
        reduction = self.reductions.get(index)
        if reduction is None:
            return None
        if self.mode == "ram":
            return self._images[index], reduction
        try:
            return np.load(self._files[index]), reduction
        except (OSError, ValueError):  # removed or damaged meanwhile: decode instead
            return None

    def fill(
        self,
        annotations: Sequence[ImageAnnotation],
        reductions: Sequence[int],
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """Decode every image at its reduction into the cache (threads; unreadable images are
        left out, the dataset reports them when it reads them)."""
        if self.mode == "ram":
            self._check_memory(annotations, reductions)
        if self.folder is not None and self.mode == "disk":
            self.folder.mkdir(parents=True, exist_ok=True)
        workers = max(1, min(8, os.cpu_count() or 1))
        jobs = list(enumerate(zip(annotations, reductions, strict=True)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for done, _ in enumerate(pool.map(lambda job: self._store(*job), jobs), start=1):
                if progress is not None and (done % 32 == 0 or done == len(jobs)):
                    progress(done, len(jobs))

    def _store(self, index: int, item: tuple[ImageAnnotation, int]) -> None:
        annotation, reduction = item
        if self.mode == "disk":
            self._store_file(index, annotation, reduction)
            return
        image = _decode(annotation, reduction)
        if image is not None:
            self._images[index] = image
            self.reductions[index] = reduction

    def _store_file(self, index: int, annotation: ImageAnnotation, reduction: int) -> None:
        assert self.folder is not None
        try:
            digest = hashlib.sha1(annotation.image_path.read_bytes(), usedforsecurity=False)
        except OSError:
            return
        path = self.folder / f"{digest.hexdigest()[:20]}-r{reduction}.npy"
        if not path.is_file():
            image = _decode(annotation, reduction)
            if image is None:
                return
            partial = path.with_suffix(f".{os.getpid()}.{index}.tmp")
            with partial.open("wb") as handle:
                np.save(handle, image)
            partial.replace(path)  # atomic: a crash never leaves a half-written entry
        self._files[index] = path
        self.reductions[index] = reduction

    def _check_memory(
        self, annotations: Sequence[ImageAnnotation], reductions: Sequence[int]
    ) -> None:
        needed = sum(cached_bytes(a, r) for a, r in zip(annotations, reductions, strict=True))
        available = available_memory()
        if available is not None and needed > RAM_SHARE * available:
            raise CacheError(
                f"data.cache: ram needs {needed / 1e9:.1f} GB for {len(annotations)} decoded "
                f"images, but only {available / 1e9:.1f} GB of memory is available; use "
                "data.cache: disk (decoded .npy files beside the runs) or none"
            )

    @property
    def size_bytes(self) -> int:
        if self.mode == "ram":
            return sum(image.nbytes for image in self._images.values())
        return sum(path.stat().st_size for path in set(self._files.values()) if path.is_file())


def _decode(annotation: ImageAnnotation, reduction: int) -> np.ndarray | None:
    """The image decoded at 1/reduction (JPEGs in the DCT domain, others resized by area)."""
    try:
        image = read_image_rgb(
            annotation.image_path, (annotation.height, annotation.width), reduction
        )
    except UnreadableImageError:
        return None
    expected = (-(-annotation.height // reduction), -(-annotation.width // reduction))
    if image.shape[:2] != expected:
        image = cv2.resize(image, expected[::-1], interpolation=cv2.INTER_AREA)
    return image
