"""Finding image files and reading their size from the header (no pixel decoding).

Sizes follow what `cv2.imread` returns: an EXIF orientation that rotates by 90 degrees (values
5-8) swaps width and height, because OpenCV (and labelling tools) show the image rotated.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from dfseg.data.formats.issues import IssueLog

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
_EXIF_ORIENTATION_TAG = 0x0112
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: Path, recursive: bool = True) -> list[Path]:
    """Image files under `folder`, sorted, hidden files and folders skipped."""
    candidates = folder.rglob("*") if recursive else folder.glob("*")
    return sorted(
        p
        for p in candidates
        if is_image(p)
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


@dataclass(frozen=True)
class ImageHeader:
    """Size as shown (EXIF-rotated) and the EXIF orientation (1 = none)."""

    width: int
    height: int
    orientation: int
    format: str


def read_image_header(path: Path) -> ImageHeader:
    """Width and height from the file header (no decoding).

    Raises:
        OSError / PIL.UnidentifiedImageError / ValueError: the file is not a readable image.
    """
    with warnings.catch_warnings():
        # PIL warns about odd EXIF or huge images; the checks below report what matters
        warnings.simplefilter("ignore")
        with Image.open(path) as image:
            width, height = image.size
            orientation = _orientation(image)
            file_format = image.format or path.suffix.lstrip(".").upper()
    if orientation in _SWAPPING_ORIENTATIONS:
        width, height = height, width
    return ImageHeader(width=width, height=height, orientation=orientation, format=file_format)


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block does not make the image unusable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def probe_image(path: Path, log: IssueLog) -> ImageHeader | None:
    """Header of a usable image, or None after logging why it is unusable."""
    try:
        if path.stat().st_size == 0:
            log.add("empty-image", path, "image file is empty (0 bytes)")
            return None
        header = read_image_header(path)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        log.add("unreadable-image", path, f"cannot read image: {error}")
        return None
    if header.width <= 0 or header.height <= 0:
        log.add("empty-image", path, f"image is {header.width}x{header.height} pixels")
        return None
    if header.orientation != 1:
        log.add(
            "exif-rotated",
            path,
            f"EXIF orientation {header.orientation}: used as {header.width}x{header.height} "
            "(rotated as displayed)",
        )
    return header


def find_image(folder: Path, stem: str) -> Path | None:
    """The existing image `folder/<stem>.<suffix>` for any image suffix (either case), or None.

    `stem` may itself contain dots (Roboflow names such as `a_jpg.rf.123`).
    """
    for suffix in sorted(IMAGE_SUFFIXES):
        for candidate in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
            if candidate.is_file():
                return candidate
    return None
