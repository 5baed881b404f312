"""Multi-scale deformable attention as D-FINE uses it: no value/output projections, per-level
point counts, sampling around reference boxes, bilinear sampling with `F.grid_sample`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


def split_value_levels(
    memory: Tensor, spatial_shapes: Sequence[tuple[Any, Any]], num_heads: int
) -> list[Tensor]:
    """Reshape the flattened multi-level memory into per-level, per-head maps for sampling.

    Args:
        memory: [B, sum(H_l * W_l), C] flattened levels, finest first.
        spatial_shapes: (H_l, W_l) per level: ints, or 0-d tensors while tracing an export with
            a dynamic input size (then the levels are sliced at graph-computed offsets).
        num_heads: attention heads M; C must be divisible by M.

    Returns:
        One [B * M, C / M, H_l, W_l] tensor per level.
    """
    channels = memory.shape[-1]
    head_dim = channels // num_heads
    value = memory.reshape(memory.shape[0], memory.shape[1], num_heads, head_dim)
    value = value.permute(0, 2, 3, 1)  # [B, M, C/M, L]
    sizes = [height * width for height, width in spatial_shapes]
    if any(isinstance(size, Tensor) for size in sizes):
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        levels = [value[..., s : s + n] for s, n in zip(starts, sizes, strict=True)]
    else:
        levels = list(value.split(sizes, dim=-1))
    return [
        level.reshape(-1, head_dim, height, width)
        for level, (height, width) in zip(levels, spatial_shapes, strict=True)
    ]


class MSDeformableAttention(nn.Module):
    """Deformable cross-attention from queries to multi-level feature maps.

    Sampling location of point p of level l: ref_xy + offset_p * (1 / P_l) * ref_wh * 0.5,
    with ref a normalised cxcywh box; attention is a softmax over all points of all levels.

    Args:
        embed_dim: C.
        num_heads: M.
        num_points: P_l per level.
        offset_scale: the 0.5 above.
    """

    num_points_scale: Tensor

    def __init__(
        self, embed_dim: int, num_heads: int, num_points: tuple[int, ...], offset_scale: float = 0.5
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.num_points = tuple(num_points)
        self.total_points = sum(num_points)
        self.offset_scale = offset_scale
        self.attention_sum = "concat"  # or "levels": summed per level (`DFine.set_attention_sum`)
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        scale = [1.0 / n for n in num_points for _ in range(n)]
        self.register_buffer("num_points_scale", torch.tensor(scale, dtype=torch.float32))
        self.sampling_offsets = nn.Linear(embed_dim, num_heads * self.total_points * 2)
        self.attention_weights = nn.Linear(embed_dim, num_heads * self.total_points)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Offsets start on rays at evenly spread angles, one ring per point; uniform attention."""
        nn.init.zeros_(self.sampling_offsets.weight)
        angles = torch.arange(self.num_heads, dtype=torch.float32) * (
            2.0 * math.pi / self.num_heads
        )
        directions = torch.stack([angles.cos(), angles.sin()], -1)  # [M, 2]
        directions = directions / directions.abs().max(-1, keepdim=True).values
        rings = torch.cat([torch.arange(1, n + 1) for n in self.num_points]).reshape(1, -1, 1)
        grid = directions.reshape(self.num_heads, 1, 2).tile([1, self.total_points, 1]) * rings
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)

    def forward(
        self,
        query: Tensor,
        reference_boxes: Tensor,
        value_levels: list[Tensor],
    ) -> Tensor:
        """Attend from each query to points sampled around its reference box.

        Args:
            query: [B, Q, C] (position embedding already added).
            reference_boxes: [B, Q, 1, 4] normalised cxcywh.
            value_levels: from `split_value_levels`, [B * M, C / M, H_l, W_l] each.

        Returns:
            [B, Q, C].
        """
        num_queries = query.shape[1]
        heads, points = self.num_heads, self.total_points
        offsets = self.sampling_offsets(query).reshape(-1, num_queries, heads, points, 2)
        weights = self.attention_weights(query).reshape(-1, num_queries, heads, points)
        weights = F.softmax(weights, dim=-1)

        scale = self.num_points_scale.to(dtype=query.dtype).unsqueeze(-1)  # [P, 1]
        offset = offsets * scale * reference_boxes[:, :, None, :, 2:] * self.offset_scale
        locations = reference_boxes[:, :, None, :, :2] + offset  # [B, Q, M, P, 2]
        weights = weights.permute(0, 2, 1, 3).reshape(-1, 1, num_queries, points)  # [B*M, 1, Q, P]
        grids = (2 * locations - 1).permute(0, 2, 1, 3, 4).flatten(0, 1)  # [B*M, Q, P, 2]
        level_grids = grids.split(list(self.num_points), dim=-2)

        sampled_levels = [
            F.grid_sample(value, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            for value, grid in zip(value_levels, level_grids, strict=True)
        ]  # [B*M, C/M, Q, P_l] each
        if self.attention_sum == "levels":  # weighted sum per level: no Concat of the samples
            level_weights = weights.split(list(self.num_points), dim=-1)
            parts = [(s * w).sum(-1) for s, w in zip(sampled_levels, level_weights, strict=True)]
            output = sum(parts[1:], parts[0])
        else:
            output = (torch.cat(sampled_levels, dim=-1) * weights).sum(-1)  # [B*M, C/M, Q]
        output = output.reshape(-1, self.embed_dim, num_queries)  # [B, C, Q]
        return output.permute(0, 2, 1)
