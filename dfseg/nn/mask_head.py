"""Instance segmentation head: per-query mask embeddings dotted with shared stride-4 mask features.

Mask features fuse every encoder level and the backbone's fine levels: everything at stride >= 8
is projected, resized to stride 8 and summed (the backbone's stride-8 stage stands in when the
encoder has no stride-8 level, as in size N), refined by a depthwise-separable block, upsampled
to stride 4 and added to the projected stride-4 backbone stage, refined again and projected to
`mask_dim`. Mask logits are `einsum("bqd,bdhw->bqhw")` of the two (`mask_logits`).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from dfseg.nn.conv import ConvNorm
from dfseg.nn.mlp import MLP


def mask_logits(embeds: Tensor, features: Tensor) -> Tensor:
    """Per-query mask logits.

    Args:
        embeds: [B, Q, D] mask embeddings.
        features: [B, D, H, W] mask features.

    Returns:
        [B, Q, H, W] logits (pre-sigmoid).
    """
    return torch.einsum("bqd,bdhw->bqhw", embeds, features)


def _separable_block(channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        ConvNorm(channels, channels, 3, groups=channels, act="silu"),
        ConvNorm(channels, out_channels, 1, act="silu"),
    )


class MaskHead(nn.Module):
    """Light mask head.

    Args:
        query_dim: decoder query width.
        encoder_dim: channels of every encoder level.
        encoder_strides: strides of the encoder levels.
        stage_channels: backbone stage channels at strides (4, 8, 16, 32).
        mask_dim: D, the embedding / feature width.
        fuse_dim: channels of the stride-8 fusion.
    """

    def __init__(
        self,
        query_dim: int,
        encoder_dim: int,
        encoder_strides: tuple[int, ...],
        stage_channels: tuple[int, ...],
        mask_dim: int = 32,
        fuse_dim: int = 64,
    ) -> None:
        super().__init__()
        self.mask_dim = mask_dim
        self.query_embed = MLP(query_dim, query_dim, mask_dim, 3)
        self.encoder_lateral = nn.ModuleList(
            ConvNorm(encoder_dim, fuse_dim, 1) for _ in encoder_strides
        )
        self.uses_backbone_stride8 = 8 not in encoder_strides
        self.stride8_lateral: nn.Module = (
            ConvNorm(stage_channels[1], fuse_dim, 1)
            if self.uses_backbone_stride8
            else nn.Identity()
        )
        self.stride8_refine = _separable_block(fuse_dim, mask_dim)
        self.stride4_lateral = ConvNorm(stage_channels[0], mask_dim, 1)
        self.stride4_refine = _separable_block(mask_dim, mask_dim)
        self.output = nn.Conv2d(mask_dim, mask_dim, 1)

    def embed_queries(self, query_features: Tensor) -> Tensor:
        """[..., Q, query_dim] -> [..., Q, mask_dim] mask embeddings."""
        return self.query_embed(query_features)

    def forward(self, stages: list[Tensor], encoder_levels: list[Tensor]) -> Tensor:
        """Mask features.

        Args:
            stages: the four backbone stage outputs, strides 4, 8, 16, 32.
            encoder_levels: encoder outputs [B, encoder_dim, H / s, W / s], finest first.

        Returns:
            [B, mask_dim, H / 4, W / 4].
        """
        laterals = zip(self.encoder_lateral, encoder_levels, strict=True)
        projected = [lateral(level) for lateral, level in laterals]
        if self.uses_backbone_stride8:
            projected.insert(0, self.stride8_lateral(stages[1]))
        fused = projected[0]
        size8 = fused.shape[-2:]
        for coarse in projected[1:]:
            fused = fused + F.interpolate(coarse, size=size8, mode="bilinear", align_corners=False)
        fused = self.stride8_refine(fused)  # [B, D, H/8, W/8]
        fine = self.stride4_lateral(stages[0])  # [B, D, H/4, W/4]
        fine = fine + F.interpolate(
            fused, size=fine.shape[-2:], mode="bilinear", align_corners=False
        )
        return self.output(self.stride4_refine(fine))
