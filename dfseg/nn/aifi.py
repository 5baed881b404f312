"""AIFI: the single post-norm transformer encoder layer D-FINE runs on its coarsest level,
with a fixed 2-D sine-cosine position embedding added to queries and keys."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from dfseg.nn.conv import activation_layer


def sincos_position_embedding(
    width: int | Tensor, height: int | Tensor, embed_dim: int, temperature: float = 10000.0
) -> Tensor:
    """2-D sin-cos position embedding for a flattened [height, width] token grid.

    Reproduces the official quirk: the grid is built with meshgrid(x, y, indexing="ij"), so the
    flattened token t (= y * width + x in the feature map) receives the code of the pair
    (t // height, t % height) rather than (x, y). Checkpoints were trained with it.

    Args:
        width: feature-map width W (an int, or a 0-d tensor while tracing a dynamic-size export).
        height: feature-map height H (likewise).
        embed_dim: channels, divisible by 4.
        temperature: frequency base.

    Returns:
        [1, H * W, embed_dim] float32.
    """
    if embed_dim % 4 != 0:
        raise ValueError(
            f"embed_dim must be divisible by 4 for a 2-D sin-cos embedding, got {embed_dim}"
        )
    grid_w, grid_h = torch.meshgrid(
        torch.arange(width, dtype=torch.float32),  # type: ignore[arg-type]
        torch.arange(height, dtype=torch.float32),  # type: ignore[arg-type]
        indexing="ij",
    )
    quarter = embed_dim // 4
    omega = 1.0 / (temperature ** (torch.arange(quarter, dtype=torch.float32) / quarter))  # [C/4]
    out_w = grid_w.flatten()[:, None] @ omega[None]  # [H*W, C/4]
    out_h = grid_h.flatten()[:, None] @ omega[None]  # [H*W, C/4]
    return torch.cat([out_w.sin(), out_w.cos(), out_h.sin(), out_h.cos()], dim=1)[None]


class EncoderLayer(nn.Module):
    """Post-norm transformer encoder layer: self-attention (position added to q and k only),
    then a two-layer feed-forward network, each followed by residual + LayerNorm."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, act: str = "gelu") -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, num_heads, dropout=0.0, batch_first=True)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.activation = activation_layer(act)

    def forward(self, tokens: Tensor, pos_embed: Tensor) -> Tensor:
        """tokens [B, N, C], pos_embed [1, N, C] -> [B, N, C]."""
        query_key = tokens + pos_embed
        attended, _ = self.self_attn(query_key, query_key, value=tokens, need_weights=False)
        tokens = self.norm1(tokens + attended)
        hidden = self.linear2(self.activation(self.linear1(tokens)))
        return self.norm2(tokens + hidden)


class EncoderStack(nn.Module):
    """`num_layers` encoder layers applied in sequence (official name: TransformerEncoder)."""

    def __init__(self, num_layers: int, dim: int, num_heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            EncoderLayer(dim, num_heads, ffn_dim) for _ in range(num_layers)
        )

    def forward(self, tokens: Tensor, pos_embed: Tensor) -> Tensor:
        """tokens [B, N, C], pos_embed [1, N, C] -> [B, N, C]."""
        for layer in self.layers:
            tokens = layer(tokens, pos_embed)
        return tokens
