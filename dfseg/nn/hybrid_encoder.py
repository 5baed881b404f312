"""HybridEncoder: per-level input projection, AIFI on the coarsest level, then a top-down FPN and
a bottom-up PAN of RepNCSPELAN4 blocks. All outputs have `hidden_dim` channels."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from dfseg.nn.aifi import EncoderStack, sincos_position_embedding
from dfseg.nn.conv import ConvNorm, ProjectionConvNorm
from dfseg.nn.csp_elan import RepNCSPELAN4, SCDown


class HybridEncoder(nn.Module):
    """D-FINE's hybrid encoder.

    Args:
        in_channels: channels of the backbone levels, finest first.
        feat_strides: strides of those levels.
        hidden_dim: channels of every output level.
        num_heads: AIFI attention heads.
        ffn_dim: AIFI feed-forward width.
        aifi_levels: indices of the levels that get an AIFI layer (the coarsest in D-FINE).
        num_encoder_layers: AIFI layers per such level.
        expansion: RepNCSPELAN4 branch width factor.
        depth_mult: RepVGG blocks per CSP layer = round(3 * depth_mult).
        image_size: (height, width) the position embeddings are cached for.
        pe_temperature: sin-cos frequency base.
    """

    def __init__(
        self,
        in_channels: tuple[int, ...],
        feat_strides: tuple[int, ...],
        hidden_dim: int,
        num_heads: int,
        ffn_dim: int,
        aifi_levels: tuple[int, ...],
        num_encoder_layers: int,
        expansion: float,
        depth_mult: float,
        image_size: tuple[int, int],
        pe_temperature: float = 10000.0,
    ) -> None:
        super().__init__()
        self.feat_strides = tuple(feat_strides)
        self.hidden_dim = hidden_dim
        self.aifi_levels = tuple(aifi_levels)
        self.pe_temperature = pe_temperature
        # Traced for an export with a dynamic input size: position embeddings are computed from
        # the traced feature size instead of the cache (see `DFine.set_dynamic_size`).
        self.dynamic_size = False
        self.input_proj = nn.ModuleList(ProjectionConvNorm(c, hidden_dim) for c in in_channels)
        self.encoder = nn.ModuleList(
            EncoderStack(num_encoder_layers, hidden_dim, num_heads, ffn_dim) for _ in aifi_levels
        )
        num_levels = len(in_channels)
        branch = round(expansion * hidden_dim // 2)
        depth = round(3 * depth_mult)
        self.lateral_convs = nn.ModuleList(
            ConvNorm(hidden_dim, hidden_dim, 1) for _ in range(num_levels - 1)
        )
        self.fpn_blocks = nn.ModuleList(
            RepNCSPELAN4(hidden_dim * 2, hidden_dim, hidden_dim * 2, branch, depth)
            for _ in range(num_levels - 1)
        )
        self.downsample_convs = nn.ModuleList(
            nn.Sequential(SCDown(hidden_dim, hidden_dim, 3, 2)) for _ in range(num_levels - 1)
        )
        self.pan_blocks = nn.ModuleList(
            RepNCSPELAN4(hidden_dim * 2, hidden_dim, hidden_dim * 2, branch, depth)
            for _ in range(num_levels - 1)
        )
        self.set_image_size(image_size)

    def set_image_size(self, image_size: tuple[int, int]) -> None:
        """Cache the AIFI position embeddings for inputs of (height, width) `image_size`."""
        self.cached_grid: dict[int, tuple[int, int]] = {}
        for level in self.aifi_levels:
            stride = self.feat_strides[level]
            height, width = image_size[0] // stride, image_size[1] // stride
            embed = sincos_position_embedding(width, height, self.hidden_dim, self.pe_temperature)
            self.register_buffer(f"pos_embed{level}", embed, persistent=False)
            self.cached_grid[level] = (height, width)

    def _position_embedding(self, level: int, height: Any, width: Any, like: Tensor) -> Tensor:
        traced_size = self.dynamic_size and torch.jit.is_tracing()
        if not self.training and not traced_size and self.cached_grid[level] == (height, width):
            return getattr(self, f"pos_embed{level}")  # the cached fast path
        embed = sincos_position_embedding(width, height, self.hidden_dim, self.pe_temperature)
        return embed.to(device=like.device, dtype=like.dtype)

    def _apply_aifi(self, projected: list[Tensor]) -> None:
        for stack, level in zip(self.encoder, self.aifi_levels, strict=True):
            feature = projected[level]
            _, channels, height, width = feature.shape
            tokens = feature.flatten(2).permute(0, 2, 1)  # [B, H*W, C]
            pos_embed = self._position_embedding(level, height, width, tokens)
            tokens = stack(tokens, pos_embed)
            projected[level] = (
                tokens.permute(0, 2, 1).reshape(-1, channels, height, width).contiguous()
            )

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        """Fuse backbone levels.

        Args:
            features: [B, C_i, H / s_i, W / s_i] per level, finest first.

        Returns:
            [B, hidden_dim, H / s_i, W / s_i] per level, finest first.
        """
        projected = [proj(feature) for proj, feature in zip(self.input_proj, features, strict=True)]
        self._apply_aifi(projected)
        num_levels = len(projected)
        top_down = [projected[-1]]  # coarsest first while descending
        for step, level in enumerate(range(num_levels - 1, 0, -1)):
            coarse = self.lateral_convs[step](top_down[-1])
            top_down[-1] = coarse
            upsampled = F.interpolate(coarse, scale_factor=2.0, mode="nearest")
            top_down.append(self.fpn_blocks[step](torch.cat([upsampled, projected[level - 1]], 1)))
        top_down.reverse()  # finest first
        outputs = [top_down[0]]
        for level in range(num_levels - 1):
            downsampled = self.downsample_convs[level](outputs[-1])
            outputs.append(self.pan_blocks[level](torch.cat([downsampled, top_down[level + 1]], 1)))
        return outputs
