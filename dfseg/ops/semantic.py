"""Class-index maps from per-class region masks (the semantic task's labels)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

IGNORE_INDEX = 255
"""Label value of pixels without a label (no loss, no metric)."""


def index_map_from_masks(masks: Tensor, labels: Tensor, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """The class of every pixel from region masks.

    Args:
        masks: [N, H, W] {0, 1} (uint8 or bool), one region per entry; N may be 0.
        labels: [N] int64 class of each region.
        ignore_index: the value of pixels no region covers.

    Returns:
        [H, W] int64 on `masks`' device; where regions overlap the last one wins.

    Raises:
        ValueError: masks and labels of different lengths.
    """
    if masks.shape[0] != labels.shape[0]:
        raise ValueError(f"{masks.shape[0]} masks but {labels.shape[0]} labels")
    height, width = masks.shape[-2:]
    out = torch.full((height, width), ignore_index, dtype=torch.int64, device=masks.device)
    values = labels.to(device=masks.device, dtype=torch.int64)  # [N]
    for mask, value in zip(masks.bool(), values, strict=True):  # later regions overwrite
        out = torch.where(mask, value, out)  # [H, W]
    return out


def index_map_from_masks_np(
    masks: np.ndarray, labels: np.ndarray, ignore_index: int = IGNORE_INDEX
) -> np.ndarray:
    """`index_map_from_masks` in numpy.

    Args:
        masks: [N, H, W] {0, 1} (any integer or bool dtype); N may be 0.
        labels: [N] integer class of each region.
        ignore_index: the value of pixels no region covers.

    Returns:
        [H, W] uint8 when every label is 0..254 and ignore_index 0..255, else int64; where
        regions overlap the last one wins.
    """
    if len(masks) != len(labels):
        raise ValueError(f"{len(masks)} masks but {len(labels)} labels")
    labels_fit = len(labels) == 0 or (int(np.min(labels)) >= 0 and int(np.max(labels)) <= 254)
    dtype = np.uint8 if labels_fit and 0 <= ignore_index <= 255 else np.int64
    out = np.full(masks.shape[-2:], ignore_index, dtype=dtype)
    for mask, label in zip(masks, labels, strict=True):
        out[mask.astype(bool)] = label
    return out
