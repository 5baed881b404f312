"""The one image pre-processing every backend shares: resize or letterbox, BGR->RGB, scale to
[0, 1], NCHW float32. Recorded per image as `ResizeParams` so outputs map back exactly."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dfseg.ops.resize import ResizeParams, compute_resize, resize_image
from dfseg.structures.manifest import Preprocessing


def preprocess_image(
    image_bgr: np.ndarray, preprocessing: Preprocessing, rect: bool = False
) -> tuple[np.ndarray, ResizeParams]:
    """One HWC uint8 BGR image (as `cv2.imread` gives it) -> ([3, H, W] float32 RGB, params)."""
    if image_bgr.ndim == 2:  # grey -> 3 channels
        image_bgr = np.repeat(image_bgr[:, :, None], 3, axis=2)
    params = compute_resize(
        image_bgr.shape[:2], preprocessing.input_size, preprocessing.keep_ratio, rect=rect
    )
    resized = resize_image(image_bgr[:, :, :3], params, pad_value=preprocessing.pad_value)
    chw_rgb = resized[:, :, ::-1].transpose(2, 0, 1)  # [3, H, W] uint8 view
    tensor = np.multiply(chw_rgb, np.float32(preprocessing.scale), dtype=np.float32)
    return tensor, params


def preprocess_batch(
    images_bgr: Sequence[np.ndarray], preprocessing: Preprocessing, rect: bool = False
) -> tuple[np.ndarray, list[ResizeParams]]:
    """A batch of images -> ([B, 3, H, W] float32, per-image params).

    With `rect`, images of one batch can get different input sizes; they are padded at the
    bottom/right to the largest (padding there does not move the recorded geometry).
    """
    tensors, params = zip(
        *(preprocess_image(im, preprocessing, rect) for im in images_bgr), strict=True
    )
    height = max(t.shape[1] for t in tensors)
    width = max(t.shape[2] for t in tensors)
    fill = np.float32(preprocessing.pad_value * preprocessing.scale)
    batch = np.full((len(tensors), 3, height, width), fill, dtype=np.float32)
    for index, tensor in enumerate(tensors):
        batch[index, :, : tensor.shape[1], : tensor.shape[2]] = tensor
    return batch, list(params)
