"""Collating `(image, target)` items into a batch: images stacked, targets kept as a list.

Multiscale needs no resizing here: `TrainBatchSampler` gives every sample of a batch the same
input size and the dataset produces it at that size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor


def collate_batch(
    items: Sequence[tuple[Tensor, dict[str, Any]]],
) -> tuple[Tensor, list[dict[str, Any]]]:
    """Stack images and list targets.

    Args:
        items: (image [3, H, W] float32, target dict) pairs of one size.

    Returns:
        (images [B, 3, H, W], targets: list of B dicts).

    Raises:
        ValueError: images of different sizes (a sampler that mixes input sizes in one batch).
    """
    shapes = sorted({tuple(image.shape) for image, _ in items})
    if len(shapes) > 1:
        raise ValueError(
            f"cannot stack images of different sizes {shapes} into one batch; every sample of a "
            "batch needs the same input size (use TrainBatchSampler for multiscale)"
        )
    images = torch.stack([image for image, _ in items])  # [B, 3, H, W]
    return images, [target for _, target in items]
