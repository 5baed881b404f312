"""Contrastive denoising queries for training (DN-DETR / DINO style, as in D-FINE).

Each ground-truth box is repeated in `num_group` groups, each group holding a positive (small
noise) and a negative (larger noise) copy. The random calls are made in the official order so a
seeded run reproduces the official queries exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from dfseg.ops.boxes import box_cxcywh_to_xyxy, box_xyxy_to_cxcywh, inverse_sigmoid


@dataclass
class DenoisingQueries:
    """Inputs the decoder prepends to its matching queries.

    Attributes:
        content: [B, N_dn, C] class embeddings of the (noised) labels.
        boxes_logit: [B, N_dn, 4] inverse-sigmoid of the noised normalised cxcywh boxes.
        attn_mask: [N_dn + Q, N_dn + Q] bool, True where attention is forbidden.
        meta: the official `dn_meta` dict (dn_positive_idx, dn_num_group, dn_num_split).
    """

    content: Tensor | None
    boxes_logit: Tensor | None
    attn_mask: Tensor | None
    meta: dict[str, Any]


def _padded_targets(
    targets: list[dict[str, Tensor]], num_classes: int, max_objects: int
) -> tuple[Tensor, Tensor, Tensor]:
    batch = len(targets)
    device = targets[0]["labels"].device
    labels = torch.full([batch, max_objects], num_classes, dtype=torch.int32, device=device)
    boxes = torch.zeros([batch, max_objects, 4], device=device)
    present = torch.zeros([batch, max_objects], dtype=torch.bool, device=device)
    for index, target in enumerate(targets):
        count = len(target["labels"])
        if count > 0:
            labels[index, :count] = target["labels"]
            boxes[index, :count] = target["boxes"]
            present[index, :count] = True
    return labels, boxes, present


def _noised_boxes(boxes: Tensor, negative: Tensor, box_noise_scale: float) -> Tensor:
    """Jitter each edge by up to half the box size (negatives by 1-2x that); normalised cxcywh."""
    corners = box_cxcywh_to_xyxy(boxes)
    half_size = torch.tile(boxes[..., 2:] * 0.5, [1, 1, 2]) * box_noise_scale
    sign = torch.randint_like(boxes, 0, 2) * 2.0 - 1.0
    magnitude = torch.rand_like(boxes)
    magnitude = (magnitude + 1.0) * negative + magnitude * (1 - negative)
    corners = torch.clip(corners + sign * magnitude * half_size, min=0.0, max=1.0)
    return box_xyxy_to_cxcywh(corners).abs()


def _group_attention_mask(
    num_denoising: int, group_size: int, num_queries: int, device: torch.device
) -> Tensor:
    """Matching queries never see denoising ones; denoising groups never see each other."""
    total = num_denoising + num_queries
    mask = torch.zeros([total, total], dtype=torch.bool, device=device)
    group = torch.arange(num_denoising, device=device) // group_size
    mask[:num_denoising, :num_denoising] = group[:, None] != group[None, :]
    mask[num_denoising:, :num_denoising] = True
    return mask


def build_denoising_queries(
    targets: list[dict[str, Tensor]],
    num_classes: int,
    num_queries: int,
    class_embed: nn.Embedding,
    num_denoising: int = 100,
    label_noise_ratio: float = 0.5,
    box_noise_scale: float = 1.0,
) -> DenoisingQueries | None:
    """Build the contrastive denoising queries of one batch.

    Args:
        targets: per image, `labels` [N] int64 and `boxes` [N, 4] normalised cxcywh.
        num_classes: C; label C is the padding label.
        num_queries: matching queries Q.
        class_embed: [C + 1, hidden] embedding of (noised) labels.
        num_denoising: budget of denoising queries; groups = num_denoising // max objects.
        label_noise_ratio: a label is replaced by a random one with probability ratio / 2.
        box_noise_scale: edge jitter relative to half the box size.

    Returns:
        None when `num_denoising` <= 0; queries with content None when no image has objects.
    """
    if num_denoising <= 0:
        return None
    counts = [len(t["labels"]) for t in targets]
    max_objects = max(counts)
    if max_objects == 0:
        meta = {"dn_positive_idx": None, "dn_num_group": 0, "dn_num_split": [0, num_queries]}
        return DenoisingQueries(None, None, None, meta)
    num_group = max(num_denoising // max_objects, 1)
    labels, boxes, present = _padded_targets(targets, num_classes, max_objects)
    labels = labels.tile([1, 2 * num_group])
    boxes = boxes.tile([1, 2 * num_group, 1])
    present = present.tile([1, 2 * num_group])
    negative = torch.zeros([len(targets), max_objects * 2, 1], device=boxes.device)
    negative[:, max_objects:] = 1
    negative = negative.tile([1, num_group, 1])  # [B, N_dn, 1]
    positive = (1 - negative).squeeze(-1) * present
    positive_index = torch.nonzero(positive)[:, 1].split([n * num_group for n in counts])
    total_denoising = int(max_objects * 2 * num_group)

    if label_noise_ratio > 0:
        flip = torch.rand_like(labels, dtype=torch.float) < (label_noise_ratio * 0.5)
        random_labels = torch.randint_like(flip, 0, num_classes, dtype=labels.dtype)
        labels = torch.where(flip & present, random_labels, labels)
    if box_noise_scale > 0:
        boxes = _noised_boxes(boxes, negative, box_noise_scale)
    attn_mask = _group_attention_mask(total_denoising, 2 * max_objects, num_queries, boxes.device)
    meta = {
        "dn_positive_idx": positive_index,
        "dn_num_group": num_group,
        "dn_num_split": [total_denoising, num_queries],
    }
    return DenoisingQueries(class_embed(labels), inverse_sigmoid(boxes), attn_mask, meta)
