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
from dataclasses import dataclass
from multiprocessing.context import get_spawning_popen
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dfseg.errors import DfsegError
from dfseg.structures import ImageAnnotation

logger = logging.getLogger("dfseg.data")


class UnreadableImageError(DfsegError):
    """An image file cannot be decoded, or no longer matches its annotation."""


_DECODE_FLAGS = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}
_JPEG_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".jfif"})


def decode_reduction(path: Path, needed_scale: float) -> int:
    """How much smaller a JPEG can be decoded when only `needed_scale` of its size is used.

    libjpeg decodes at 1/2, 1/4 or 1/8 size in the DCT domain, several times faster than a full
    decode plus resize for large photos (a 12 MP phone picture needed at 640 px decodes at 1/4).
    The reduced image keeps the pixel grid: reduced pixel i covers original pixels
    [r*i, r*(i+1)), so original x maps to x / r exactly (when a side is not a multiple of r the
    last reduced pixel reaches past the image edge). Other formats are decoded at full size.

    Args:
        path: the image file.
        needed_scale: the largest output/original size ratio the image will be used at.

    Returns:
        1, 2, 4 or 8: the largest reduction that still leaves at least `needed_scale` of the size.
    """
    if path.suffix.lower() not in _JPEG_SUFFIXES:
        return 1
    return next((r for r in (8, 4, 2) if 1.0 / r >= needed_scale), 1)


def read_image_rgb(
    path: Path, expected_hw: tuple[int, int] | None = None, reduction: int = 1
) -> np.ndarray:
    """Decode an image file.

    Args:
        path: the image file.
        expected_hw: (height, width) the dataset scan recorded; a different size means the file
            changed and its labels no longer line up.
        reduction: decode a JPEG at 1/reduction of its size (1, 2, 4 or 8; see
            `decode_reduction`); the size is then ceil(height / r) x ceil(width / r).

    Returns:
        [H, W, 3] uint8 RGB, EXIF orientation applied (as the format readers measure sizes).

    Raises:
        UnreadableImageError: the file is missing, undecodable or has changed size.
    """
    image = cv2.imread(str(path), _DECODE_FLAGS[reduction])  # [H, W, 3] BGR
    if image is None:
        raise UnreadableImageError(
            f"{path}: cannot be read or decoded (deleted, moved or corrupted after the dataset "
            "scan); run `dfseg check` to rescan the dataset"
        )
    if expected_hw is not None:
        expected = (-(-expected_hw[0] // reduction), -(-expected_hw[1] // reduction))
        if tuple(image.shape[:2]) != expected:
            height, width = (side * reduction for side in image.shape[:2])
            raise UnreadableImageError(
                f"{path}: is now about {width}x{height} (WxH) but was {expected_hw[1]}x"
                f"{expected_hw[0]} when the dataset was scanned, so its labels no longer line up; "
                "rescan the dataset"
            )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=image)


@dataclass(frozen=True)
class DecodedImage:
    """A decoded dataset image with its annotation (one source of a sample or mosaic tile).

    Attributes:
        image: [h, w, 3] uint8 RGB, the original image or a JPEG decoded at 1/reduction size.
        annotation: its instances in original pixels.
        image_index: its index in the dataset (kept in `Sample.instance_keys`).
        reduction: `image` pixel i covers original pixels [r*i, r*(i+1)) (see
            `dfseg.data.image_reader.decode_reduction`).
        origin_xy: where `image` starts in the decoded image, in decoded pixels: (0, 0) for the
            whole image, a tile's corner for a window cut out of it (`window`).
    """

    image: np.ndarray
    annotation: ImageAnnotation
    image_index: int
    reduction: int = 1
    origin_xy: tuple[int, int] = (0, 0)

    @property
    def source_hw(self) -> tuple[int, int]:
        """(height, width) in original pixels of what `image` shows (the annotation's size for
        a whole image)."""
        r, (x, y) = self.reduction, self.origin_xy
        height, width = self.image.shape[:2]
        return (
            min(self.annotation.height - y * r, height * r),
            min(self.annotation.width - x * r, width * r),
        )

    def original_to_image(self) -> np.ndarray:
        """[3, 3] float64 affine: original pixels (x, y, 1) -> pixels of `image`."""
        r, (x, y) = self.reduction, self.origin_xy
        return np.array([[1.0 / r, 0.0, -x], [0.0, 1.0 / r, -y], [0.0, 0.0, 1.0]])

    def window(self, tile: int, rng: np.random.Generator) -> DecodedImage:
        """A random `tile` x `tile` window (in original pixels) of a larger image, or the image
        itself where it is no larger than `tile`; its instances are cut where they are used."""
        height, width = self.image.shape[:2]
        side = -(-tile // self.reduction)  # decoded pixels covering `tile` original pixels
        if height <= side and width <= side:
            return self
        x = int(rng.integers(0, width - side + 1)) if width > side else 0
        y = int(rng.integers(0, height - side + 1)) if height > side else 0
        crop = self.image[y : y + side, x : x + side]
        return DecodedImage(crop, self.annotation, self.image_index, self.reduction, (x, y))


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
