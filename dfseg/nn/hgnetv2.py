"""HGNetv2 backbone (PP-HGNetV2, as configured by D-FINE), variants B0..B6.

Module names follow the official implementation so its checkpoints load with strict=True.
Every stage output is available (strides 4, 8, 16, 32) through `forward_stages`; `forward`
returns only the stages listed in `return_idx`, which is what the detector's encoder consumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from dfseg.nn.conv import fold_norm_into_conv
from dfseg.nn.norm import freeze_batch_norm


@dataclass(frozen=True)
class StageSpec:
    """One HG stage: channels, block count, and the shape of each block's conv layers."""

    in_channels: int
    mid_channels: int
    out_channels: int
    num_blocks: int
    downsample: bool
    light_block: bool
    kernel_size: int
    layer_num: int


@dataclass(frozen=True)
class HGNetv2Arch:
    """Stem channels (in, mid, out) and the four stages of one HGNetv2 variant."""

    stem_channels: tuple[int, int, int]
    stages: tuple[StageSpec, StageSpec, StageSpec, StageSpec]

    @property
    def stage_channels(self) -> tuple[int, ...]:
        """Output channels of the four stages (strides 4, 8, 16, 32)."""
        return tuple(stage.out_channels for stage in self.stages)


def _arch(stem: tuple[int, int, int], *stages: tuple) -> HGNetv2Arch:
    return HGNetv2Arch(stem, tuple(StageSpec(*s) for s in stages))  # type: ignore[arg-type]


# in, mid, out, blocks, downsample, light_block, kernel, layer_num (PP-HGNetV2 tables).
HGNETV2_ARCHS: dict[str, HGNetv2Arch] = {
    "B0": _arch((3, 16, 16),
                (16, 16, 64, 1, False, False, 3, 3), (64, 32, 256, 1, True, False, 3, 3),
                (256, 64, 512, 2, True, True, 5, 3), (512, 128, 1024, 1, True, True, 5, 3)),
    "B1": _arch((3, 24, 32),
                (32, 32, 64, 1, False, False, 3, 3), (64, 48, 256, 1, True, False, 3, 3),
                (256, 96, 512, 2, True, True, 5, 3), (512, 192, 1024, 1, True, True, 5, 3)),
    "B2": _arch((3, 24, 32),
                (32, 32, 96, 1, False, False, 3, 4), (96, 64, 384, 1, True, False, 3, 4),
                (384, 128, 768, 3, True, True, 5, 4), (768, 256, 1536, 1, True, True, 5, 4)),
    "B3": _arch((3, 24, 32),
                (32, 32, 128, 1, False, False, 3, 5), (128, 64, 512, 1, True, False, 3, 5),
                (512, 128, 1024, 3, True, True, 5, 5), (1024, 256, 2048, 1, True, True, 5, 5)),
    "B4": _arch((3, 32, 48),
                (48, 48, 128, 1, False, False, 3, 6), (128, 96, 512, 1, True, False, 3, 6),
                (512, 192, 1024, 3, True, True, 5, 6), (1024, 384, 2048, 1, True, True, 5, 6)),
    "B5": _arch((3, 32, 64),
                (64, 64, 128, 1, False, False, 3, 6), (128, 128, 512, 2, True, False, 3, 6),
                (512, 256, 1024, 5, True, True, 5, 6), (1024, 512, 2048, 2, True, True, 5, 6)),
    "B6": _arch((3, 48, 96),
                (96, 96, 192, 2, False, False, 3, 6), (192, 192, 512, 3, True, False, 3, 6),
                (512, 384, 1024, 6, True, True, 5, 6), (1024, 768, 2048, 3, True, True, 5, 6)),
}  # fmt: skip

STAGE_STRIDES = (4, 8, 16, 32)


def max_pool_2x2_stride1(x: Tensor) -> Tensor:
    """MaxPool2d(kernel 2, stride 1): [B, C, H, W] -> [B, C, H - 1, W - 1].

    The official stem uses nn.MaxPool2d(2, 1, ceil_mode=True); ceil_mode is a no-op after its
    (0, 1, 0, 1) padding and breaks ONNX export. On CPU the pooling kernel (which also computes
    indices) is slow, ~15% of size N; the max of four shifted views is exact and 3-25x faster,
    provided the views are taken in the tensor's memory order (NHWC for channels-last).
    Exported graphs get one MaxPool node instead: on OpenVINO the sliced form also forces a
    reference (slow) Concat in the stem, ~5% of size N.
    """
    if torch.jit.is_tracing():
        return F.max_pool2d(x, kernel_size=2, stride=1)
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        nhwc = x.permute(0, 2, 3, 1)  # contiguous view
        top = torch.maximum(nhwc[:, :-1, :-1], nhwc[:, :-1, 1:])
        bottom = torch.maximum(nhwc[:, 1:, :-1], nhwc[:, 1:, 1:])
        return torch.maximum(top, bottom).permute(0, 3, 1, 2)
    top = torch.maximum(x[..., :-1, :-1], x[..., :-1, 1:])
    bottom = torch.maximum(x[..., 1:, :-1], x[..., 1:, 1:])
    return torch.maximum(top, bottom)


class LearnableAffineBlock(nn.Module):
    """y = scale * x + bias with scalar learnable scale and bias."""

    def __init__(self, scale: float = 1.0, bias: float = 0.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([scale]))
        self.bias = nn.Parameter(torch.tensor([bias]))

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * x + self.bias


class ConvBNAct(nn.Module):
    """Conv (no bias, padding (k-1)//2) -> BN -> ReLU (optional) -> LAB (with act and use_lab).

    `fold_norm()` folds the BN into cached (non-persistent) conv weights, leaving the state
    dict's keys as they are (the official deployed listing keeps the backbone unchanged). It is
    opt-in (`DFine.deploy(fuse_backbone=True)`): the rounding differences it brings stay far
    below detection accuracy but exceed the official deploy-parity tolerances.
    """

    fused_weight: Tensor
    fused_bias: Tensor

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        use_act: bool = True,
        use_lab: bool = False,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding=(kernel_size - 1) // 2,
            groups=groups,
            bias=False,
        )
        self.bn: nn.Module = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU(inplace=True) if use_act else nn.Identity()
        self.lab = LearnableAffineBlock() if (use_act and use_lab) else nn.Identity()
        self.has_lab = use_act and use_lab
        self.is_fused = False

    def forward(self, x: Tensor) -> Tensor:
        """[B, C_in, H, W] -> [B, C_out, H', W']."""
        if self.is_fused:
            x = self.conv._conv_forward(x, self.fused_weight, self.fused_bias)
        else:
            x = self.bn(self.conv(x))
        x = self.act(x)  # in place: the BN output is ours
        if self.has_lab and not torch.is_grad_enabled():
            # Same arithmetic as the LAB, in place: saves two large allocations at inference.
            lab = cast(LearnableAffineBlock, self.lab)
            return x.mul_(lab.scale).add_(lab.bias)
        return self.lab(x)

    def fold_norm(self) -> None:
        """Fold BN into cached conv weights (outputs unchanged up to float rounding)."""
        weight, bias = fold_norm_into_conv(self.conv.weight, None, self.bn)  # type: ignore[arg-type]
        self.register_buffer("fused_weight", weight, persistent=False)
        self.register_buffer("fused_bias", bias, persistent=False)
        self.is_fused = True


class LightConvBNAct(nn.Module):
    """1x1 ConvBNAct without activation, then a depthwise kxk ConvBNAct with activation."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, use_lab: bool
    ) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(in_channels, out_channels, 1, use_act=False, use_lab=use_lab)
        self.conv2 = ConvBNAct(
            out_channels, out_channels, kernel_size, groups=out_channels, use_lab=use_lab
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(self.conv1(x))


class StemBlock(nn.Module):
    """Stride-4 stem: conv s2, a 2x2 conv branch beside a 2x2 max-pool, concat, conv s2, 1x1."""

    def __init__(
        self, in_channels: int, mid_channels: int, out_channels: int, use_lab: bool
    ) -> None:
        super().__init__()
        self.stem1 = ConvBNAct(in_channels, mid_channels, 3, stride=2, use_lab=use_lab)
        self.stem2a = ConvBNAct(mid_channels, mid_channels // 2, 2, use_lab=use_lab)
        self.stem2b = ConvBNAct(mid_channels // 2, mid_channels, 2, use_lab=use_lab)
        self.stem3 = ConvBNAct(mid_channels * 2, mid_channels, 3, stride=2, use_lab=use_lab)
        self.stem4 = ConvBNAct(mid_channels, out_channels, 1, use_lab=use_lab)

    def forward(self, x: Tensor) -> Tensor:
        """[B, 3, H, W] -> [B, out_channels, H / 4, W / 4]."""
        x = F.pad(self.stem1(x), (0, 1, 0, 1))
        branch = F.pad(self.stem2a(x), (0, 1, 0, 1))
        branch = self.stem2b(branch)
        pooled = max_pool_2x2_stride1(x)
        x = self.stem3(torch.cat([pooled, branch], dim=1))
        return self.stem4(x)


class HGBlock(nn.Module):
    """`layer_num` chained convs; input and every output concatenated, squeezed to out/2,
    excited to out; residual for all but a stage's first block."""

    def __init__(
        self,
        in_channels: int,
        mid_channels: int,
        out_channels: int,
        layer_num: int,
        kernel_size: int,
        residual: bool,
        light_block: bool,
        use_lab: bool,
    ) -> None:
        super().__init__()
        self.residual = residual
        self.layers = nn.ModuleList()
        for index in range(layer_num):
            layer_in = in_channels if index == 0 else mid_channels
            if light_block:
                self.layers.append(LightConvBNAct(layer_in, mid_channels, kernel_size, use_lab))
            else:
                self.layers.append(ConvBNAct(layer_in, mid_channels, kernel_size, use_lab=use_lab))
        total_channels = in_channels + layer_num * mid_channels
        self.aggregation = nn.Sequential(
            ConvBNAct(total_channels, out_channels // 2, 1, use_lab=use_lab),
            ConvBNAct(out_channels // 2, out_channels, 1, use_lab=use_lab),
        )

    def forward(self, x: Tensor) -> Tensor:
        outputs = [x]
        hidden = x
        for layer in self.layers:
            hidden = layer(hidden)
            outputs.append(hidden)
        aggregated = self.aggregation(torch.cat(outputs, dim=1))
        return aggregated + x if self.residual else aggregated


class HGStage(nn.Module):
    """Optional depthwise stride-2 downsample (no activation), then `num_blocks` HG blocks."""

    def __init__(self, spec: StageSpec, use_lab: bool) -> None:
        super().__init__()
        self.downsample: nn.Module = (
            ConvBNAct(
                spec.in_channels,
                spec.in_channels,
                3,
                stride=2,
                groups=spec.in_channels,
                use_act=False,
                use_lab=use_lab,
            )
            if spec.downsample
            else nn.Identity()
        )
        self.blocks = nn.Sequential(
            *[
                HGBlock(
                    spec.in_channels if index == 0 else spec.out_channels,
                    spec.mid_channels,
                    spec.out_channels,
                    spec.layer_num,
                    spec.kernel_size,
                    residual=index > 0,
                    light_block=spec.light_block,
                    use_lab=use_lab,
                )
                for index in range(spec.num_blocks)
            ]
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(self.downsample(x))


class HGNetv2(nn.Module):
    """HGNetv2 backbone.

    Args:
        arch: variant name, a key of `HGNETV2_ARCHS` ("B0".."B6").
        use_lab: learnable affine blocks after activations (N/S/M).
        return_idx: stages returned by `forward` (0..3 = strides 4, 8, 16, 32).
        freeze_stem: stem parameters get requires_grad=False (official L/X).
        freeze_norm: every BatchNorm2d becomes a FrozenBatchNorm2d (official L/X).
    """

    def __init__(
        self,
        arch: str,
        use_lab: bool,
        return_idx: tuple[int, ...],
        freeze_stem: bool = False,
        freeze_norm: bool = False,
    ) -> None:
        super().__init__()
        if arch not in HGNETV2_ARCHS:
            raise ValueError(
                f"unknown HGNetv2 variant {arch!r}; expected one of {sorted(HGNETV2_ARCHS)}"
            )
        spec = HGNETV2_ARCHS[arch]
        self.arch = arch
        self.return_idx = tuple(return_idx)
        self.stage_channels = spec.stage_channels
        self.stem = StemBlock(*spec.stem_channels, use_lab=use_lab)
        self.stages = nn.ModuleList(HGStage(stage, use_lab) for stage in spec.stages)
        if freeze_stem:
            for parameter in self.stem.parameters():
                parameter.requires_grad_(False)
        if freeze_norm:
            freeze_batch_norm(self)

    @property
    def out_channels(self) -> tuple[int, ...]:
        """Channels of the returned stages."""
        return tuple(self.stage_channels[i] for i in self.return_idx)

    @property
    def out_strides(self) -> tuple[int, ...]:
        """Strides of the returned stages."""
        return tuple(STAGE_STRIDES[i] for i in self.return_idx)

    def forward_stages(self, images: Tensor) -> list[Tensor]:
        """All four stage outputs, strides 4, 8, 16, 32.

        Args:
            images: [B, 3, H, W] RGB in [0, 1].

        Returns:
            [B, C_i, H / s_i, W / s_i] for s_i in (4, 8, 16, 32).
        """
        x = self.stem(images)
        outputs = []
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs

    def forward(self, images: Tensor, all_stages: bool = False) -> list[Tensor]:
        """The stages in `return_idx` (or all four with `all_stages`): [B, C_i, H/s_i, W/s_i]."""
        stages = self.forward_stages(images)
        return stages if all_stages else [stages[i] for i in self.return_idx]
