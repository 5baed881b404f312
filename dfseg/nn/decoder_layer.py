"""One D-FINE decoder layer: self-attention, deformable cross-attention merged through a gate,
and a feed-forward network."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch import Tensor

from dfseg.nn.deformable_attention import MSDeformableAttention


class Gate(nn.Module):
    """Gated fusion: LayerNorm(g1 * x1 + g2 * x2) with (g1, g2) = sigmoid(Linear([x1, x2]))."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gate = nn.Linear(2 * dim, 2 * dim)
        self.norm = nn.LayerNorm(dim)
        nn.init.zeros_(self.gate.weight)
        nn.init.constant_(self.gate.bias, -math.log((1 - 0.5) / 0.5))  # both gates start at 0.5

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        """[B, Q, C], [B, Q, C] -> [B, Q, C]."""
        gates = torch.sigmoid(self.gate(torch.cat([x1, x2], dim=-1)))
        gate1, gate2 = gates.chunk(2, dim=-1)
        return self.norm(gate1 * x1 + gate2 * x2)


class DecoderLayer(nn.Module):
    """Self-attention -> norm1; deformable cross-attention -> gateway; FFN (ReLU) -> norm3.

    Args:
        dim: query width C.
        num_heads: attention heads.
        ffn_dim: feed-forward width.
        num_points: sampling points per level.
    """

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, num_points: tuple[int, ...]) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, num_heads, dropout=0.0, batch_first=True)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn = MSDeformableAttention(dim, num_heads, num_points)
        self.gateway = Gate(dim)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.activation = nn.ReLU()
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.norm3 = nn.LayerNorm(dim)
        nn.init.xavier_uniform_(self.linear1.weight)
        nn.init.xavier_uniform_(self.linear2.weight)

    def forward(
        self,
        target: Tensor,
        reference_boxes: Tensor,
        value_levels: list[Tensor],
        query_pos: Tensor,
        attn_mask: Tensor | None = None,
    ) -> Tensor:
        """Refine the query features.

        Args:
            target: [B, Q, C] query features.
            reference_boxes: [B, Q, 1, 4] normalised cxcywh.
            value_levels: per-level value maps from `split_value_levels`.
            query_pos: [B, Q, C] position embedding of the reference boxes.
            attn_mask: [Q, Q] bool, True where attention is forbidden (denoising groups).

        Returns:
            [B, Q, C].
        """
        query_key = target + query_pos
        attended, _ = self.self_attn(
            query_key, query_key, value=target, attn_mask=attn_mask, need_weights=False
        )
        target = self.norm1(target + attended)
        sampled = self.cross_attn(target + query_pos, reference_boxes, value_levels)
        target = self.gateway(target, sampled)
        target = target + self.linear2(self.activation(self.linear1(target)))
        # The clamp keeps fp16 inference finite before the last norm.
        return self.norm3(target.clamp(min=-65504, max=65504))
