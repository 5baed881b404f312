"""Encoder anchors: one square box per feature-map cell, in logit space, for query selection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor


def size_tensor(values: Sequence[int | Tensor], device: torch.device | str = "cpu") -> Tensor:
    """[len(values)] float32 from sizes that are ints or (while tracing) 0-d tensors."""
    if any(isinstance(value, Tensor) for value in values):
        return torch.stack([torch.as_tensor(v) for v in values]).to(device, torch.float32)
    return torch.tensor(list(values), dtype=torch.float32, device=device)


def feature_grid_sizes(
    image_size: tuple[int, int], strides: tuple[int, ...]
) -> list[tuple[int, int]]:
    """(H / s, W / s) per stride for an input of (height, width) `image_size`."""
    return [(int(image_size[0] / s), int(image_size[1] / s)) for s in strides]


def generate_anchors(
    spatial_shapes: Sequence[tuple[Any, Any]],
    grid_size: float = 0.05,
    eps: float = 0.01,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor]:
    """Anchors centred on every cell, side grid_size * 2^level, as inverse-sigmoid cxcywh.

    Shape-polymorphic: the level sizes may be Python ints or (while tracing an export with a
    dynamic input size) 0-d tensors, so the anchors become part of the graph.

    Args:
        spatial_shapes: (H_l, W_l) per level, finest first.
        grid_size: anchor side on level 0, normalised.
        eps: anchors with any coordinate outside (eps, 1 - eps) are invalid.
        device: where to build them.

    Returns:
        (anchors [1, L, 4] float32 logits of normalised cxcywh, +inf where invalid;
         valid_mask [1, L, 1] bool), L = sum(H_l * W_l), levels concatenated finest first.
    """
    per_level = []
    for level, (height, width) in enumerate(spatial_shapes):
        grid_y, grid_x = torch.meshgrid(
            torch.arange(height, device=device), torch.arange(width, device=device), indexing="ij"
        )
        centres = torch.stack([grid_x, grid_y], dim=-1).unsqueeze(0) + 0.5  # [1, H, W, 2]
        centres = centres / size_tensor((width, height), device)
        sizes = torch.ones_like(centres) * grid_size * (2.0**level)
        per_level.append(torch.cat([centres, sizes], dim=-1).reshape(1, -1, 4))
    anchors = torch.cat(per_level, dim=1)  # [1, L, 4]
    valid_mask = ((anchors > eps) * (anchors < 1 - eps)).all(-1, keepdim=True)  # [1, L, 1]
    anchors = torch.log(anchors / (1 - anchors))
    anchors = torch.where(valid_mask, anchors, torch.inf)
    return anchors, valid_mask
