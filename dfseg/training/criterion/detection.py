"""Classification and box losses of DETR-style detectors on matched (query, target) pairs.

Boxes are normalised cxcywh unless a name says xyxy. Every function reduces as D-FINE does, so its
values reproduce the official implementation, and guards the divisions that degenerate boxes turn
into 0 / 0 (the official code produces NaN there and zeroes the loss afterwards, which still lets
NaN gradients through).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from dfseg.ops.boxes import box_area, box_cxcywh_to_xyxy, elementwise_box_iou

Matches = Sequence[tuple[Tensor, Tensor]]

# Below this a union or enclosing area is treated as empty (normalised units; 1e-12 is ~1e-6 of a
# pixel in a 640 image), so a division only changes where the official one returns NaN.
_AREA_EPS = 1e-12


def matched_query_index(matches: Matches) -> tuple[Tensor, Tensor]:
    """Per-image matches -> (batch index [K], query index [K]) to gather matched predictions."""
    batch = torch.cat([torch.full_like(query, i) for i, (query, _) in enumerate(matches)])
    query = torch.cat([query for query, _ in matches])
    return batch, query


def gather_matched_targets(
    targets: Sequence[dict[str, Tensor]], matches: Matches, key: str
) -> Tensor:
    """Concatenate `targets[b][key][target_idx]` over images in match order."""
    return torch.cat(
        [t[key][target_idx] for t, (_, target_idx) in zip(targets, matches, strict=True)]
    )


@torch.no_grad()
def matched_ious(pred_boxes: Tensor, target_boxes: Tensor) -> Tensor:
    """IoU of paired boxes ([K, 4] cxcywh each) -> [K], detached, 0 where both boxes are empty."""
    ious = elementwise_box_iou(box_cxcywh_to_xyxy(pred_boxes), box_cxcywh_to_xyxy(target_boxes))
    return torch.nan_to_num(ious, nan=0.0)


def paired_generalized_iou(boxes1_xyxy: Tensor, boxes2_xyxy: Tensor) -> Tensor:
    """Generalised IoU of paired boxes, safe for gradients on degenerate boxes.

    Args:
        boxes1_xyxy: [K, 4] with x2 >= x1, y2 >= y1.
        boxes2_xyxy: [K, 4] same.

    Returns:
        [K] GIoU in [-1, 1]; 0 / 0 terms (empty union or enclosing box) count as 0.
    """
    inner_tl = torch.max(boxes1_xyxy[:, :2], boxes2_xyxy[:, :2])  # [K, 2]
    inner_br = torch.min(boxes1_xyxy[:, 2:], boxes2_xyxy[:, 2:])  # [K, 2]
    inner_wh = (inner_br - inner_tl).clamp(min=0)  # [K, 2]
    inter = inner_wh[:, 0] * inner_wh[:, 1]  # [K]
    union = box_area(boxes1_xyxy) + box_area(boxes2_xyxy) - inter  # [K]
    iou = inter / union.clamp(min=_AREA_EPS)  # [K]
    outer_tl = torch.min(boxes1_xyxy[:, :2], boxes2_xyxy[:, :2])  # [K, 2]
    outer_br = torch.max(boxes1_xyxy[:, 2:], boxes2_xyxy[:, 2:])  # [K, 2]
    outer_wh = (outer_br - outer_tl).clamp(min=0)  # [K, 2]
    enclosing = outer_wh[:, 0] * outer_wh[:, 1]  # [K]
    return iou - (enclosing - union) / enclosing.clamp(min=_AREA_EPS)


def _iou_weighted_class_targets(
    logits: Tensor, matches: Matches, labels: Tensor, ious: Tensor, num_classes: int
) -> tuple[Tensor, Tensor]:
    """One-hot classes of matched queries and that one-hot scaled by IoU.

    Returns:
        (one_hot [B, Q, C] int64, iou_target [B, Q, C] float32).
    """
    index = matched_query_index(matches)
    target_classes = torch.full(
        logits.shape[:2], num_classes, dtype=torch.int64, device=logits.device
    )
    target_classes[index] = labels  # [B, Q]
    one_hot = F.one_hot(target_classes, num_classes=num_classes + 1)[..., :-1]  # [B, Q, C]
    target_iou = torch.zeros_like(target_classes, dtype=logits.dtype)  # [B, Q]
    target_iou[index] = ious.to(target_iou.dtype)
    return one_hot, target_iou.unsqueeze(-1) * one_hot  # [B, Q, C] each


def varifocal_loss(
    logits: Tensor,
    matches: Matches,
    labels: Tensor,
    ious: Tensor,
    num_boxes: float,
    alpha: float = 0.75,
    gamma: float = 2.0,
) -> Tensor:
    """Varifocal loss: BCE towards IoU at the matched class, focal down-weighting of negatives.

    Args:
        logits: [B, Q, C] pre-sigmoid class logits.
        matches: per image (query indices, target indices).
        labels: [K] class of each match, in match order.
        ious: [K] detached IoU of each matched prediction with its target.
        num_boxes: normaliser.
        alpha: weight of negatives.
        gamma: focal exponent of negatives.

    Returns:
        [] scalar: per-class BCE averaged over queries, summed, times Q / num_boxes.
    """
    num_classes = logits.shape[-1]
    one_hot, target_score = _iou_weighted_class_targets(logits, matches, labels, ious, num_classes)
    pred_score = logits.sigmoid().detach()  # [B, Q, C]
    weight = alpha * pred_score.pow(gamma) * (1 - one_hot) + target_score  # [B, Q, C]
    loss = F.binary_cross_entropy_with_logits(logits, target_score, weight=weight, reduction="none")
    return loss.mean(1).sum() * logits.shape[1] / num_boxes


def matchability_aware_loss(
    logits: Tensor,
    matches: Matches,
    labels: Tensor,
    ious: Tensor,
    num_boxes: float,
    gamma: float = 1.5,
    alpha: float | None = None,
) -> Tensor:
    """DEIM's MAL: target IoU**gamma at the matched class, positives at full weight.

    Same arguments and reduction as `varifocal_loss`; `alpha` (None in DEIM's configs) scales the
    negatives' focal weight.
    """
    num_classes = logits.shape[-1]
    one_hot, target_score = _iou_weighted_class_targets(logits, matches, labels, ious, num_classes)
    target_score = target_score.pow(gamma)  # [B, Q, C]
    pred_score = logits.sigmoid().detach()  # [B, Q, C]
    negative_weight = pred_score.pow(gamma) * (1 - one_hot)  # [B, Q, C]
    if alpha is not None:
        negative_weight = alpha * negative_weight
    weight = negative_weight + one_hot
    loss = F.binary_cross_entropy_with_logits(logits, target_score, weight=weight, reduction="none")
    return loss.mean(1).sum() * logits.shape[1] / num_boxes


def box_losses(pred_boxes: Tensor, target_boxes: Tensor, num_boxes: float) -> dict[str, Tensor]:
    """L1 and GIoU losses of matched boxes.

    Args:
        pred_boxes: [K, 4] normalised cxcywh.
        target_boxes: [K, 4] normalised cxcywh.
        num_boxes: normaliser.

    Returns:
        {"loss_bbox": [], "loss_giou": []}, sums over matches / num_boxes.
    """
    l1 = F.l1_loss(pred_boxes, target_boxes, reduction="none")  # [K, 4]
    giou = paired_generalized_iou(box_cxcywh_to_xyxy(pred_boxes), box_cxcywh_to_xyxy(target_boxes))
    return {"loss_bbox": l1.sum() / num_boxes, "loss_giou": (1 - giou).sum() / num_boxes}
