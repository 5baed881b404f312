"""D-FINE's losses on edge distributions: FGL and DDF (GO-LSD self-distillation).

A query's `pred_corners` are [4 * (reg_max + 1)] logits: one distribution over the W(n) bins for
each edge, in (left, top, right, bottom) order (see `dfseg.ops.fdr`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from dfseg.ops.boxes import box_cxcywh_to_xyxy
from dfseg.ops.fdr import box_to_distance


def fine_grained_localization_loss(
    pred_corners: Tensor,
    ref_points: Tensor,
    target_boxes: Tensor,
    ious: Tensor,
    num_boxes: float,
    reg_max: int,
    reg_scale: Tensor | float,
    up: Tensor,
) -> Tensor:
    """FGL: cross-entropy towards the two bins around each target edge, weighted by IoU.

    Args:
        pred_corners: [K, 4 * (reg_max + 1)] edge logits of the matched queries.
        ref_points: [K, 4] their initial reference boxes, normalised cxcywh (detached).
        target_boxes: [K, 4] matched targets, normalised cxcywh.
        ious: [K] detached IoU of each matched prediction with its target.
        num_boxes: normaliser.
        reg_max: number of bins minus one.
        reg_scale: [1] tensor or float.
        up: [1] tensor.

    Returns:
        [] sum over edges of (CE(left) * w_left + CE(right) * w_right) * IoU, / num_boxes.
    """
    with torch.no_grad():
        target_index, weight_right, weight_left = box_to_distance(
            ref_points.detach(), box_cxcywh_to_xyxy(target_boxes), reg_max, reg_scale, up
        )  # [K * 4] each
    logits = pred_corners.reshape(-1, reg_max + 1)  # [K * 4, bins]
    left_bin = target_index.long()  # [K * 4]
    loss = F.cross_entropy(logits, left_bin, reduction="none") * weight_left.reshape(-1) + (
        F.cross_entropy(logits, left_bin + 1, reduction="none") * weight_right.reshape(-1)
    )  # [K * 4]
    edge_weights = ious.detach().float().repeat_interleave(4)  # [K * 4]
    return (loss * edge_weights).sum() / num_boxes


@dataclass(frozen=True)
class DistillationBalance:
    """sqrt(count * 8 / batch) of the matched (`positive`) and other (`negative`) edges.

    D-FINE weighs the two means of the DDF loss by these; they are computed on the regular queries
    and reused, as in the official code, for the denoising layers.
    """

    positive: Tensor
    negative: Tensor

    @classmethod
    def from_mask(cls, matched_edges: Tensor, batch_size: int) -> DistillationBalance:
        """[B * Q * 4] bool mask of matched edges -> balance (8 / B removes the batch size)."""
        batch_scale = 8 / batch_size
        positive = (matched_edges.sum() * batch_scale) ** 0.5
        negative = ((~matched_edges).sum() * batch_scale) ** 0.5
        return cls(positive=positive, negative=negative)


def decoupled_distillation_loss(
    pred_corners: Tensor,
    teacher_corners: Tensor,
    teacher_logits: Tensor,
    matched_index: tuple[Tensor, Tensor],
    ious: Tensor,
    balance: DistillationBalance | None,
    temperature: float = 5.0,
) -> tuple[Tensor, DistillationBalance]:
    """DDF: KL from the last layer's edge distributions, decoupled into matched / unmatched means.

    Matched queries are weighted by their IoU, others by the teacher's max class score; the two
    means are combined with `balance` weights.

    Args:
        pred_corners: [B, Q, 4 * (reg_max + 1)] this layer's edge logits.
        teacher_corners: [B, Q, 4 * (reg_max + 1)] the last layer's (detached here).
        teacher_logits: [B, Q, C] the last layer's class logits.
        matched_index: (batch index [K], query index [K]) of the matched queries.
        ious: [K] their detached IoU with their targets.
        balance: weights of the two means; None computes them from this layer's mask.
        temperature: distillation temperature T (the KL is scaled by T**2).

    Returns:
        ([] loss, the balance used). When the layer is the teacher itself the loss is an exact 0.
    """
    num_bins = teacher_corners.shape[-1] // 4
    student = pred_corners.reshape(-1, num_bins)  # [B * Q * 4, bins]
    teacher = teacher_corners.reshape(-1, num_bins)  # [B * Q * 4, bins]
    matched = torch.zeros(teacher_logits.shape[:2], dtype=torch.bool, device=pred_corners.device)
    matched[matched_index] = True
    matched_edges = matched.unsqueeze(-1).repeat(1, 1, 4).reshape(-1)  # [B * Q * 4]
    if balance is None:
        balance = DistillationBalance.from_mask(matched_edges, pred_corners.shape[0])
    if torch.equal(student, teacher):
        return student.sum() * 0, balance

    with torch.no_grad():
        query_weight = teacher_logits.sigmoid().max(dim=-1)[0]  # [B, Q]
        query_weight[matched_index] = ious.to(query_weight.dtype)
        edge_weight = query_weight.unsqueeze(-1).repeat(1, 1, 4).reshape(-1)  # [B * Q * 4]
    kl = F.kl_div(
        F.log_softmax(student / temperature, dim=1),
        F.softmax(teacher.detach() / temperature, dim=1),
        reduction="none",
    ).sum(-1)  # [B * Q * 4]
    per_edge = edge_weight * (temperature**2) * kl  # [B * Q * 4]
    matched_mean = per_edge[matched_edges].mean() if matched_edges.any() else per_edge.sum() * 0
    other_mean = per_edge[~matched_edges].mean() if (~matched_edges).any() else per_edge.sum() * 0
    loss = (matched_mean * balance.positive + other_mean * balance.negative) / (
        balance.positive + balance.negative
    )
    return loss, balance
