"""Convolution + batch-norm (+ activation) blocks that fold into one convolution for deployment."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from dfseg.nn.norm import FrozenBatchNorm2d

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
}
INPLACE_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu_,
    "silu": lambda x: F.silu(x, inplace=True),
}


def activation_layer(name: str | None) -> nn.Module:
    """The activation module called `name` ("relu", "silu", "gelu"), or Identity for None."""
    if name is None:
        return nn.Identity()
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def apply_activation(x: Tensor, act: nn.Module, name: str | None) -> Tensor:
    """`act(x)`, computed in place when autograd is off (x must be a fresh tensor the caller
    owns): large feature maps then skip an allocation."""
    if name in INPLACE_ACTIVATIONS and not torch.is_grad_enabled():
        return INPLACE_ACTIVATIONS[name](x)
    return act(x)


def fold_norm_into_conv(
    weight: Tensor, bias: Tensor | None, norm: nn.BatchNorm2d | FrozenBatchNorm2d
) -> tuple[Tensor, Tensor]:
    """Weights of one convolution equal to conv followed by an eval-mode batch norm.

    Args:
        weight: [C_out, C_in / groups, kH, kW] convolution weight.
        bias: [C_out] convolution bias or None.
        norm: the batch norm that follows, with C_out channels.

    Returns:
        (weight [C_out, C_in / groups, kH, kW], bias [C_out]), detached.
    """
    assert norm.running_mean is not None and norm.running_var is not None
    gamma = norm.weight if norm.weight is not None else torch.ones_like(norm.running_var)
    beta = norm.bias if norm.bias is not None else torch.zeros_like(norm.running_var)
    std = (norm.running_var + norm.eps).sqrt()
    scale = gamma / std  # [C_out]
    conv_bias = bias if bias is not None else torch.zeros_like(norm.running_mean)
    fused_bias = beta + (conv_bias - norm.running_mean) * scale
    return (weight * scale.reshape(-1, 1, 1, 1)).detach(), fused_bias.detach()


class ConvNorm(nn.Module):
    """Conv2d (no bias, "same" padding for odd kernels) -> BatchNorm2d -> activation.

    `deploy()` replaces conv and norm by a single biased convolution `conv_bn_fused` (the
    official D-FINE name, so deployed state dicts match theirs).

    Args:
        in_channels: C_in.
        out_channels: C_out.
        kernel_size: square kernel size.
        stride: convolution stride.
        groups: convolution groups (C_in for depthwise).
        act: activation name or None.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        act: str | None = None,
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
        self.norm = nn.BatchNorm2d(out_channels)
        self.act = activation_layer(act)
        self.act_name = act
        self.is_fused = False

    def forward(self, x: Tensor) -> Tensor:
        """[B, C_in, H, W] -> [B, C_out, H / stride, W / stride]."""
        y = self.conv_bn_fused(x) if self.is_fused else self.norm(self.conv(x))
        return apply_activation(y, self.act, self.act_name)

    def fused_weight_and_bias(self) -> tuple[Tensor, Tensor]:
        """(weight, bias) of the single convolution equivalent to conv -> norm (eval mode)."""
        return fold_norm_into_conv(self.conv.weight, self.conv.bias, self.norm)

    def deploy(self) -> None:
        """Fold the batch norm into the convolution (idempotent)."""
        if self.is_fused:
            return
        weight, bias = self.fused_weight_and_bias()
        conv = self.conv
        fused = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,  # type: ignore[arg-type]
            conv.stride,  # type: ignore[arg-type]
            padding=conv.padding,  # type: ignore[arg-type]
            groups=conv.groups,
            bias=True,
        ).to(weight.device)
        fused.weight.data = weight.to(conv.weight.dtype)
        fused.bias.data = bias.to(conv.weight.dtype)  # type: ignore[union-attr]
        del self.conv
        del self.norm
        self.conv_bn_fused = fused
        self.is_fused = True


class ProjectionConvNorm(nn.Module):
    """1x1 (or kxk) conv without bias -> BatchNorm2d, no activation: the encoder/decoder input
    projections.

    The official deployed state dict keeps these unfused (`conv.weight`, `norm.*`), so `deploy()`
    caches the folded weights as non-persistent buffers: faster, same keys.
    """

    fused_weight: Tensor
    fused_bias: Tensor

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding=(kernel_size - 1) // 2,
            bias=False,
        )
        self.norm = nn.BatchNorm2d(out_channels)
        self.is_fused = False

    def forward(self, x: Tensor) -> Tensor:
        """[B, C_in, H, W] -> [B, C_out, H / stride, W / stride]."""
        if self.is_fused:
            return self.conv._conv_forward(x, self.fused_weight, self.fused_bias)
        return self.norm(self.conv(x))

    def deploy(self) -> None:
        """Cache the folded conv+BN weights (state-dict keys unchanged)."""
        weight, bias = fold_norm_into_conv(self.conv.weight, None, self.norm)
        self.register_buffer("fused_weight", weight, persistent=False)
        self.register_buffer("fused_bias", bias, persistent=False)
        self.is_fused = True
