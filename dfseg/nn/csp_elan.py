"""The HybridEncoder's fusion blocks: RepVGG, CSP layer, RepNCSPELAN4 and SCDown.

All are built from `ConvNorm` and fold to plain convolutions in `deploy()`.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from dfseg.nn.conv import ConvNorm, activation_layer, apply_activation


class RepVGGBlock(nn.Module):
    """3x3 conv+BN plus 1x1 conv+BN, summed, then activation; folds to one 3x3 conv."""

    def __init__(self, in_channels: int, out_channels: int, act: str = "silu") -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv1 = ConvNorm(in_channels, out_channels, 3)
        self.conv2 = ConvNorm(in_channels, out_channels, 1)
        self.act = activation_layer(act)
        self.act_name = act
        self.is_fused = False

    def forward(self, x: Tensor) -> Tensor:
        """[B, C_in, H, W] -> [B, C_out, H, W]."""
        y = self.conv(x) if self.is_fused else self.conv1(x) + self.conv2(x)
        return apply_activation(y, self.act, self.act_name)

    def deploy(self) -> None:
        """Replace both branches by one biased 3x3 convolution `conv` (idempotent)."""
        if self.is_fused:
            return
        weight3, bias3 = self.conv1.fused_weight_and_bias()
        weight1, bias1 = self.conv2.fused_weight_and_bias()
        fused = nn.Conv2d(self.in_channels, self.out_channels, 3, 1, padding=1).to(weight3.device)
        with torch.no_grad():
            fused.weight.copy_(weight3 + F.pad(weight1, [1, 1, 1, 1]))
            fused.bias.copy_(bias3 + bias1)  # type: ignore[union-attr]
        del self.conv1
        del self.conv2
        self.conv = fused
        self.is_fused = True


class CSPLayer(nn.Module):
    """Two 1x1 branches; one runs through `num_blocks` RepVGG blocks; summed (then 1x1 if the
    hidden width differs from the output width)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_blocks: int,
        expansion: float = 1.0,
        act: str = "silu",
    ) -> None:
        super().__init__()
        hidden = int(out_channels * expansion)
        self.conv1 = ConvNorm(in_channels, hidden, 1, act=act)
        self.conv2 = ConvNorm(in_channels, hidden, 1, act=act)
        self.bottlenecks = nn.Sequential(
            *[RepVGGBlock(hidden, hidden, act) for _ in range(num_blocks)]
        )
        self.conv3: nn.Module = (
            ConvNorm(hidden, out_channels, 1, act=act) if hidden != out_channels else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.conv3(self.bottlenecks(self.conv1(x)) + self.conv2(x))


class RepNCSPELAN4(nn.Module):
    """CSP-ELAN block: 1x1 to `hidden_channels`, split in halves; the second half runs through
    two (CSP layer + 3x3 conv) stages whose outputs are all concatenated and fused by a 1x1.

    Args:
        in_channels: C_in.
        out_channels: C_out.
        hidden_channels: width after the first 1x1 (split into two halves).
        branch_channels: width of the two CSP stages.
        num_blocks: RepVGG blocks per CSP layer.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        branch_channels: int,
        num_blocks: int,
        act: str = "silu",
    ) -> None:
        super().__init__()
        self.split_channels = hidden_channels // 2
        self.cv1 = ConvNorm(in_channels, hidden_channels, 1, act=act)
        self.cv2 = nn.Sequential(
            CSPLayer(self.split_channels, branch_channels, num_blocks, act=act),
            ConvNorm(branch_channels, branch_channels, 3, act=act),
        )
        self.cv3 = nn.Sequential(
            CSPLayer(branch_channels, branch_channels, num_blocks, act=act),
            ConvNorm(branch_channels, branch_channels, 3, act=act),
        )
        self.cv4 = ConvNorm(hidden_channels + 2 * branch_channels, out_channels, 1, act=act)

    def forward(self, x: Tensor) -> Tensor:
        """[B, C_in, H, W] -> [B, C_out, H, W]."""
        first, second = self.cv1(x).split((self.split_channels, self.split_channels), dim=1)
        third = self.cv2(second)
        fourth = self.cv3(third)
        return self.cv4(torch.cat([first, second, third, fourth], dim=1))


class SCDown(nn.Module):
    """Spatial-channel decoupled downsampling: 1x1 conv+BN, then depthwise kxk stride-s conv+BN."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.cv1 = ConvNorm(in_channels, out_channels, 1)
        self.cv2 = ConvNorm(out_channels, out_channels, kernel_size, stride, groups=out_channels)

    def forward(self, x: Tensor) -> Tensor:
        """[B, C_in, H, W] -> [B, C_out, H / stride, W / stride]."""
        return self.cv2(self.cv1(x))
