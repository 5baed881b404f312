"""Box format conversions and overlap measures on torch tensors.

Conventions: `xyxy` is (x1, y1, x2, y2), `cxcywh` is (centre x, centre y, width, height). Functions
work in whatever unit the input uses (normalised [0, 1] or pixels) and keep it.
"""

from __future__ import annotations

import torch
from torch import Tensor


def box_cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """[..., 4] cxcywh -> [..., 4] xyxy. Negative sizes are clamped to zero."""
    cx, cy, w, h = boxes.unbind(-1)
    half_w = 0.5 * w.clamp(min=0.0)
    half_h = 0.5 * h.clamp(min=0.0)
    return torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=-1)


def box_xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """[..., 4] xyxy -> [..., 4] cxcywh."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=-1)


def box_area(boxes_xyxy: Tensor) -> Tensor:
    """[..., 4] xyxy -> [...] area (zero for degenerate boxes is not enforced)."""
    return (boxes_xyxy[..., 2] - boxes_xyxy[..., 0]) * (boxes_xyxy[..., 3] - boxes_xyxy[..., 1])


def box_iou(boxes1_xyxy: Tensor, boxes2_xyxy: Tensor) -> tuple[Tensor, Tensor]:
    """Pairwise IoU and union.

    Args:
        boxes1_xyxy: [N, 4].
        boxes2_xyxy: [M, 4].

    Returns:
        (iou [N, M], union [N, M]).
    """
    area1 = box_area(boxes1_xyxy)  # [N]
    area2 = box_area(boxes2_xyxy)  # [M]
    top_left = torch.max(boxes1_xyxy[:, None, :2], boxes2_xyxy[:, :2])  # [N, M, 2]
    bottom_right = torch.min(boxes1_xyxy[:, None, 2:], boxes2_xyxy[:, 2:])  # [N, M, 2]
    wh = (bottom_right - top_left).clamp(min=0)  # [N, M, 2]
    inter = wh[..., 0] * wh[..., 1]  # [N, M]
    union = area1[:, None] + area2 - inter  # [N, M]
    return inter / union, union


def generalized_box_iou(boxes1_xyxy: Tensor, boxes2_xyxy: Tensor) -> Tensor:
    """Pairwise generalised IoU (https://giou.stanford.edu/).

    Args:
        boxes1_xyxy: [N, 4], x2 >= x1 and y2 >= y1.
        boxes2_xyxy: [M, 4], same.

    Returns:
        [N, M] GIoU in [-1, 1].
    """
    iou, union = box_iou(boxes1_xyxy, boxes2_xyxy)
    top_left = torch.min(boxes1_xyxy[:, None, :2], boxes2_xyxy[:, :2])  # [N, M, 2]
    bottom_right = torch.max(boxes1_xyxy[:, None, 2:], boxes2_xyxy[:, 2:])  # [N, M, 2]
    wh = (bottom_right - top_left).clamp(min=0)  # [N, M, 2]
    enclosing = wh[..., 0] * wh[..., 1]  # [N, M]
    return iou - (enclosing - union) / enclosing


def elementwise_box_iou(boxes1_xyxy: Tensor, boxes2_xyxy: Tensor) -> Tensor:
    """IoU of paired boxes: [N, 4] and [N, 4] -> [N]."""
    top_left = torch.max(boxes1_xyxy[:, :2], boxes2_xyxy[:, :2])  # [N, 2]
    bottom_right = torch.min(boxes1_xyxy[:, 2:], boxes2_xyxy[:, 2:])  # [N, 2]
    wh = (bottom_right - top_left).clamp(min=0)  # [N, 2]
    inter = wh[:, 0] * wh[:, 1]
    union = box_area(boxes1_xyxy) + box_area(boxes2_xyxy) - inter
    return inter / union


def inverse_sigmoid(x: Tensor, eps: float = 1e-5) -> Tensor:
    """Logit of x clamped to [0, 1]; the inverse of `torch.sigmoid` away from the ends."""
    x = x.clip(min=0.0, max=1.0)
    return torch.log(x.clip(min=eps) / (1 - x).clip(min=eps))
