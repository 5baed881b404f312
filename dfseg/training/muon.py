"""Muon for the hidden weight matrices and kernels, AdamW for the rest, as one optimizer.

Muon (Jordan et al., 2024) keeps a Nesterov momentum of each weight's gradient and steps along
its orthogonalised form: the matrix U V^T of the momentum's SVD U S V^T, approximated by five
Newton-Schulz iterations (in bf16 where the device has it natively). Every direction of the
update then has the same size, so directions the plain gradient barely moves can move as fast as
the dominant ones. A convolution kernel is treated as the matrix (out, in * kh * kw).

The step size follows the "match RMS of AdamW" rule (0.2 * sqrt(max(rows, cols)), Liu et al.,
2025, torch's `adjust_lr_fn="match_rms_adamw"`), so a group's AdamW learning rate, warm-up and
schedule carry over unchanged. Embeddings and prediction layers (class scores, box distributions,
sampling offsets, attention weights, mask logits), norms and biases stay with AdamW, as Muon's
authors advise for inputs and outputs of a network.

Param groups carry `muon: True/False`; everything else about them (`initial_lr`, names, weight
decay) is what `build_optimizer` gives AdamW groups, so the schedule, gradient clipping, the
GradScaler and checkpoints treat both kinds alike.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # Keller Jordan's quintic, maximal slope at zero
NS_STEPS = 5

OUTPUT_LAYER_MARKS = (
    "score_head",
    "bbox_head",
    "reg_conf",
    "sampling_offsets",
    "attention_weights",
    "mask_head.output",
    "semantic_head.classifier",
    "denoising_class_embed",
)
"""Parameter name parts of D-FINE's prediction layers and embeddings: they stay with AdamW."""


def takes_muon(name: str, param: Tensor, module: nn.Module) -> bool:
    """Whether Muon steps this parameter: a weight matrix or kernel of a hidden layer."""
    if param.ndim < 2 or isinstance(module, nn.Embedding):
        return False
    return not any(mark in name for mark in OUTPUT_LAYER_MARKS)


@functools.cache
def newton_schulz_dtype(device_type: str) -> torch.dtype:
    """bf16 where matrix products run natively in it (CUDA; CPUs with AVX512-BF16 or AMX),
    else float32: on an AVX2-only CPU, bf16 products are emulated and one Muon step of D-FINE-N
    took 8.4 s instead of 0.3 s."""
    if device_type == "cuda" or (device_type == "cpu" and cpu_computes_bf16()):
        return torch.bfloat16
    return torch.float32


def cpu_computes_bf16() -> bool:
    """Whether oneDNN runs bf16 matrix products natively on this CPU."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def orthogonalise(matrix: Tensor, steps: int = NS_STEPS, eps: float = 1e-7) -> Tensor:
    """Newton-Schulz approximation of U V^T for `matrix` = U S V^T (2-D), in bf16 where the device
    computes it natively (`newton_schulz_dtype`); singular values of at least a hundredth of the
    largest land in about [0.5, 1.2], which Muon does not mind."""
    a, b, c = NS_COEFFICIENTS
    x = matrix.to(newton_schulz_dtype(matrix.device.type))
    wide = x.size(0) <= x.size(1)
    if not wide:
        x = x.T
    x = x / x.norm().clamp(min=eps)  # spectral norm <= Frobenius norm <= 1
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return (x if wide else x.T).to(matrix.dtype)


def muon_scale(shape: torch.Size) -> float:
    """Step multiplier that gives Muon's update the RMS of an AdamW update (0.2 * sqrt(max))."""
    rows, cols = shape[0], math.prod(shape[1:])
    return 0.2 * math.sqrt(max(rows, cols))


class MuonAdamW(torch.optim.Optimizer):
    """Muon on the groups marked `muon`, AdamW (decoupled weight decay) on the others."""

    def __init__(
        self,
        params: Iterable[dict[str, Any]],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        momentum: float = 0.95,
        weight_decay: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        defaults = {
            "lr": lr,
            "betas": betas,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "eps": eps,
            "muon": False,
        }
        super().__init__(list(params), defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                if group["muon"]:
                    self._muon_step(param, group)
                else:
                    self._adamw_step(param, group)
        return loss

    def _muon_step(self, param: Tensor, group: dict[str, Any]) -> None:
        grad, state = param.grad, self.state[param]
        assert grad is not None
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(param)
        buffer = state["momentum_buffer"]
        buffer.lerp_(grad, 1 - group["momentum"])
        nesterov = grad.lerp(buffer, group["momentum"])
        update = orthogonalise(nesterov.reshape(len(nesterov), -1)).view_as(param)
        param.mul_(1 - group["lr"] * group["weight_decay"])
        param.add_(update, alpha=-group["lr"] * muon_scale(param.shape))

    def _adamw_step(self, param: Tensor, group: dict[str, Any]) -> None:
        grad, state = param.grad, self.state[param]
        assert grad is not None
        if "step" not in state:
            state["step"] = torch.zeros((), dtype=torch.float32)
            state["exp_avg"] = torch.zeros_like(param)
            state["exp_avg_sq"] = torch.zeros_like(param)
        beta1, beta2 = group["betas"]
        state["step"] += 1
        step = float(state["step"])
        state["exp_avg"].lerp_(grad, 1 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denominator = (state["exp_avg_sq"] / (1 - beta2**step)).sqrt_().add_(group["eps"])
        param.mul_(1 - group["lr"] * group["weight_decay"])
        param.addcdiv_(state["exp_avg"], denominator, value=-group["lr"] / (1 - beta1**step))
