"""Reading images for inference: paths (any Unicode name) or arrays -> HWC uint8 BGR."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dfseg.runtime.errors import ImageReadError

ImageInput = Any  # str | Path | np.ndarray | PIL.Image.Image (PIL stays an optional import)
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
)


def read_image_bgr(path: Path | str) -> np.ndarray:
    """Decode an image file as [H, W, 3] uint8 BGR (EXIF orientation applied).

    Raises:
        ImageReadError: the file is missing, empty or not a decodable image.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: image not found")
    # cv2.imread as training reads images: it recovers slightly truncated JPEGs that imdecode
    # rejects. np.fromfile + imdecode then reads names imread cannot (non-ASCII on Windows).
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        data = np.fromfile(path, dtype=np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise ImageReadError(f"{path}: not a readable image (empty, truncated or unknown format)")
    return image


def as_bgr_array(image: ImageInput) -> np.ndarray:
    """A path, an array or a PIL image -> [H, W, 3] uint8 BGR.

    Arrays are taken as BGR (as OpenCV gives them): [H, W] grey, [H, W, 3] BGR or [H, W, 4]
    BGRA (alpha dropped). Float arrays must already be in 0..255. PIL images are in RGB (any
    mode; converted), so `Image.open(path)` works as it is.

    Raises:
        ImageReadError: an unreadable file or an array of the wrong shape.
    """
    if isinstance(image, (str, Path)):
        return read_image_bgr(image)
    if hasattr(image, "getbands") and hasattr(image, "convert"):  # a PIL image
        rgb = np.asarray(image.convert("RGB"))  # [H, W, 3] uint8
        return np.ascontiguousarray(rgb[:, :, ::-1])
    array = np.asarray(image)
    if array.ndim == 2:
        array = cv2.cvtColor(_as_uint8(array), cv2.COLOR_GRAY2BGR)
    elif array.ndim == 3 and array.shape[2] in (1, 3, 4):
        array = _as_uint8(array)
        if array.shape[2] == 1:
            array = cv2.cvtColor(array, cv2.COLOR_GRAY2BGR)
        elif array.shape[2] == 4:
            array = cv2.cvtColor(array, cv2.COLOR_BGRA2BGR)
    else:
        raise ImageReadError(
            f"expected an image array [H, W], [H, W, 3] (BGR) or [H, W, 4], got shape "
            f"{array.shape}; CHW tensors must be transposed to HWC first"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageReadError(f"empty image array of shape {array.shape}")
    return array


def _as_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating) and array.size and 0 < array.max() <= 1.0:
        raise ImageReadError(
            "float image arrays must hold 0..255 values (got a maximum <= 1.0); multiply by 255"
        )
    return np.clip(array, 0, 255).astype(np.uint8)
