"""Semantic segmentation head: every encoder level fused to stride 8, refined with the backbone's
stride-4 stage, one logit map per class at stride 4 (a light FPN / SegFormer-style decoder).

Everything at stride >= 8 is projected to `fuse_dim`, resized to stride 8 and summed (the
backbone's stride-8 stage stands in when the encoder has no stride-8 level, as in size N), then
refined; upsampled to stride 4 it is added to the projected stride-4 stage, refined again and
classified by a 1x1 convolution. `context="ppm"` runs PSPNet's pyramid pooling (1, 2, 3, 6 bins)
on the coarsest encoder level first: global context for large uniform regions.

The refinements are depthwise-separable (depthwise 3x3 + pointwise 1x1), as in `MaskHead`: at
stride 4 a full 3x3 convolution would cost about as much as the rest of the head together.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from dfseg.nn.conv import ConvNorm

SemanticContext = Literal["none", "ppm"]
PPM_BINS = (1, 2, 3, 6)


def _refine_block(channels: int) -> nn.Sequential:
    """Depthwise 3x3 + pointwise 1x1, both normalised and activated."""
    return nn.Sequential(
        ConvNorm(channels, channels, 3, groups=channels, act="silu"),
        ConvNorm(channels, channels, 1, act="silu"),
    )


def _adaptive_pool_matrix(length: Any, bins: int, like: Tensor) -> Tensor:
    """Averaging weights of PyTorch's adaptive pooling along one axis.

    Row i averages positions floor(i * L / bins) .. ceil((i + 1) * L / bins) - 1, the bins of
    `F.adaptive_avg_pool2d`. `length` may be a traced size: the matrix is then computed in the
    graph, so the pooling exports with a dynamic input size.

    Returns:
        [bins, L] in `like`'s dtype and device, rows summing to 1.
    """
    positions = torch.arange(length, device=like.device)  # [L]
    index = torch.arange(bins, device=like.device)  # [bins]
    start = (index * length) // bins  # [bins]
    end = ((index + 1) * length + bins - 1) // bins  # [bins]
    inside = (positions[None] >= start[:, None]) & (positions[None] < end[:, None])  # [bins, L]
    weights = inside.to(like.dtype)
    return weights / weights.sum(dim=1, keepdim=True)


def adaptive_avg_pool2d_traceable(x: Tensor, bins: int) -> Tensor:
    """`F.adaptive_avg_pool2d(x, bins)` as two matrix products.

    The ONNX exporter only converts adaptive pooling to other than 1x1 for a static input size;
    this form traces with a dynamic one (and equals the original up to float rounding).

    Args:
        x: [B, C, H, W].
        bins: output height and width.

    Returns:
        [B, C, bins, bins].
    """
    rows = _adaptive_pool_matrix(x.shape[-2], bins, x)  # [bins, H]
    cols = _adaptive_pool_matrix(x.shape[-1], bins, x)  # [bins, W]
    return rows @ x @ cols.transpose(0, 1)  # [B, C, bins, bins]


class PyramidPooling(nn.Module):
    """PSPNet's pyramid pooling: the map average-pooled to each bin count, projected, upsampled
    and concatenated with the input, fused back to `channels`.

    The pooled branches use a biased convolution without batch norm: a 1x1-pooled map has one
    value per channel and image, which batch norm cannot normalise in training at batch size 1.
    """

    def __init__(self, channels: int, bins: tuple[int, ...] = PPM_BINS) -> None:
        super().__init__()
        branch = max(channels // len(bins), 8)
        self.bins = bins
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, branch, 1), nn.SiLU()) for _ in bins
        )
        self.fuse = ConvNorm(channels + branch * len(bins), channels, 1, act="silu")

    def forward(self, x: Tensor) -> Tensor:
        """[B, C, h, w] -> [B, C, h, w]."""
        size = x.shape[-2:]
        pooled = [
            F.interpolate(
                conv(adaptive_avg_pool2d_traceable(x, bins)),  # [B, branch, bins, bins]
                size=size,
                mode="bilinear",
                align_corners=False,
            )
            for bins, conv in zip(self.bins, self.branches, strict=True)
        ]
        return self.fuse(torch.cat([x, *pooled], dim=1))


class SemanticHead(nn.Module):
    """Per-class logits at stride 4 from the backbone stages and the encoder levels.

    Args:
        num_classes: C, logit maps (background included when the dataset has one).
        encoder_dim: channels of every encoder level.
        encoder_strides: strides of the encoder levels, finest first (e.g. (8, 16, 32)); all
            at least 8.
        stage_channels: backbone stage channels at strides (4, 8, 16, 32).
        fuse_dim: channels of the fusion.
        context: "ppm" adds pyramid pooling on the coarsest encoder level.
        dropout: 2-D (channel) dropout probability before the classifier (training only).
    """

    def __init__(
        self,
        num_classes: int,
        encoder_dim: int,
        encoder_strides: tuple[int, ...],
        stage_channels: tuple[int, ...],
        fuse_dim: int = 96,
        context: SemanticContext = "none",
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if context not in ("none", "ppm"):
            raise ValueError(f"context must be 'none' or 'ppm', got {context!r}")
        if not encoder_strides or min(encoder_strides) < 8:
            raise ValueError(f"encoder_strides must be >= 8, got {encoder_strides}")
        self.context: nn.Module = PyramidPooling(encoder_dim) if context == "ppm" else nn.Identity()
        self.encoder_lateral = nn.ModuleList(
            ConvNorm(encoder_dim, fuse_dim, 1) for _ in encoder_strides
        )
        self.uses_backbone_stride8 = 8 not in encoder_strides
        self.stride8_lateral: nn.Module = (
            ConvNorm(stage_channels[1], fuse_dim, 1)
            if self.uses_backbone_stride8
            else nn.Identity()
        )
        self.stride8_refine = _refine_block(fuse_dim)
        self.stride4_lateral = ConvNorm(stage_channels[0], fuse_dim, 1)
        self.stride4_refine = _refine_block(fuse_dim)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(fuse_dim, num_classes, 1)
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)  # type: ignore[arg-type]

    def forward(self, stages: list[Tensor], encoder_levels: list[Tensor]) -> Tensor:
        """Class logits.

        Args:
            stages: the four backbone stage outputs, strides 4, 8, 16, 32.
            encoder_levels: encoder outputs [B, encoder_dim, H / s, W / s], finest first.

        Returns:
            [B, C, H / 4, W / 4] logits (pre-softmax).
        """
        levels = [*encoder_levels[:-1], self.context(encoder_levels[-1])]
        laterals = zip(self.encoder_lateral, levels, strict=True)
        projected = [lateral(level) for lateral, level in laterals]  # [B, D, H/s, W/s] each
        if self.uses_backbone_stride8:
            projected.insert(0, self.stride8_lateral(stages[1]))
        fused = projected[0]  # [B, D, H/8, W/8]
        size8 = fused.shape[-2:]
        for coarse in projected[1:]:
            fused = fused + F.interpolate(coarse, size=size8, mode="bilinear", align_corners=False)
        fused = self.stride8_refine(fused)  # [B, D, H/8, W/8]
        fine = self.stride4_lateral(stages[0])  # [B, D, H/4, W/4]
        fine = fine + F.interpolate(
            fused, size=fine.shape[-2:], mode="bilinear", align_corners=False
        )
        return self.classifier(self.dropout(self.stride4_refine(fine)))  # [B, C, H/4, W/4]
