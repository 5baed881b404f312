"""Knowledge-distillation terms (teacher -> student), each a pure function of the two models'
outputs. Every KL term is softened at temperature t and multiplied by t^2 (Hinton et al.), so
its gradients keep the same scale whatever t; every term is 0 when the student's outputs equal
the teacher's.

- `pixel_kl` + `probability_mse`: a semantic model's per-pixel class distributions
  (FastSegFormer's "P&KL": KL at t plus k x MSE of the probabilities).
- `sigmoid_kl`: D-FINE's class logits are independent sigmoids (focal / varifocal training),
  so each class is a Bernoulli and the KL is the binary one, averaged over classes.
- `distribution_kl`: FDR's corner distributions (one softmax over the reg_max + 1 bins per box
  edge), the localisation distillation D-FINE applies between its own layers, here between
  models.
- `feature_distillation`: encoder maps standardised per channel over H, W (so that scale and
  offset differences between the two networks do not count), teacher maps resized to the
  student's, student channels projected to the teacher's by a 1x1 convolution.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def pixel_kl(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """KL(teacher || student) of per-pixel class distributions, mean over pixels, x t^2.

    Args:
        student, teacher: [B, C, H, W] class logits (the teacher's resized to the student's
            size by the caller when they differ).
        temperature: t > 0.
    """
    log_student = F.log_softmax(student.float() / temperature, dim=1)
    log_teacher = F.log_softmax(teacher.float() / temperature, dim=1)
    per_pixel = (log_teacher.exp() * (log_teacher - log_student)).sum(dim=1)  # [B, H, W]
    return per_pixel.mean() * temperature**2


def probability_mse(student: Tensor, teacher: Tensor) -> Tensor:
    """Mean squared difference of the per-pixel class probabilities ([B, C, H, W] logits)."""
    return F.mse_loss(student.float().softmax(dim=1), teacher.float().softmax(dim=1))


def sigmoid_kl(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """Binary KL(teacher || student) of independent sigmoid class scores, mean over every
    element, x t^2.

    Args:
        student, teacher: [..., C] pre-sigmoid logits of matched queries.
        temperature: t > 0.
    """
    if student.numel() == 0:
        return student.sum() * 0.0
    s, t = student.float() / temperature, teacher.float() / temperature
    p = torch.sigmoid(t)
    # KL(p || q) with q = sigmoid(s), written with log-sigmoids for stability
    kl = p * (F.logsigmoid(t) - F.logsigmoid(s)) + (1 - p) * (F.logsigmoid(-t) - F.logsigmoid(-s))
    return kl.mean() * temperature**2


def distribution_kl(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """KL(teacher || student) of FDR corner distributions, mean over edges, x t^2.

    Args:
        student, teacher: [K, 4 * (reg_max + 1)] corner logits of K matched queries.
        temperature: t > 0.
    """
    if student.numel() == 0:
        return student.sum() * 0.0
    if student.shape != teacher.shape:
        raise ValueError(
            f"corner distributions differ in shape: student {tuple(student.shape)}, teacher "
            f"{tuple(teacher.shape)} (different reg_max)"
        )
    bins = student.shape[-1] // 4
    s = student.float().reshape(-1, bins) / temperature
    t = teacher.float().reshape(-1, bins) / temperature
    log_s, log_t = F.log_softmax(s, dim=-1), F.log_softmax(t, dim=-1)
    return (log_t.exp() * (log_t - log_s)).sum(dim=-1).mean() * temperature**2


def standardise(features: Tensor, eps: float = 1e-5) -> Tensor:
    """[B, C, H, W] -> zero mean and unit variance per image and channel over H, W."""
    flat = features.float().flatten(2)
    mean = flat.mean(dim=2, keepdim=True)
    std = flat.std(dim=2, keepdim=True, unbiased=False)
    return ((flat - mean) / (std + eps)).view_as(features)


def feature_distillation(
    student: Sequence[Tensor], teacher: Sequence[Tensor], projectors: nn.ModuleList
) -> Tensor:
    """Mean over levels of the MSE between standardised maps.

    Args:
        student: per level [B, C_s, h, w] (the student's encoder outputs).
        teacher: per level [B, C_t, h', w'] (bilinearly resized to (h, w) when they differ).
        projectors: per level a module mapping C_s -> C_t channels (1x1 conv, or identity).
    """
    if not (len(student) == len(teacher) == len(projectors)):
        raise ValueError(
            f"{len(student)} student levels, {len(teacher)} teacher levels and "
            f"{len(projectors)} projectors"
        )
    losses = []
    for s, t, projector in zip(student, teacher, projectors, strict=True):
        t = t.float()
        if t.shape[-2:] != s.shape[-2:]:
            t = F.interpolate(t, size=s.shape[-2:], mode="bilinear", align_corners=False)
        losses.append(F.mse_loss(standardise(projector(s.float())), standardise(t)))
    return torch.stack(losses).mean()


def feature_projectors(
    student_channels: Sequence[int], teacher_channels: Sequence[int]
) -> nn.ModuleList:
    """One 1x1 conv per level (identity where the channel counts agree)."""
    layers: list[nn.Module] = []
    for cs, ct in zip(student_channels, teacher_channels, strict=True):
        layers.append(nn.Identity() if cs == ct else nn.Conv2d(cs, ct, kernel_size=1))
    return nn.ModuleList(layers)
