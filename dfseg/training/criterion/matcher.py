"""Hungarian (one-to-one) matching of predictions to ground truth, and D-FINE's union of matches.

Costs follow D-FINE / DETR: a focal-style class cost, L1 on normalised cxcywh boxes, negative
GIoU, and optionally (segmentation) a BCE and a Dice mask cost on points inside each target box.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from dfseg.ops.boxes import box_cxcywh_to_xyxy, generalized_box_iou
from dfseg.training.criterion.masks import downsample_masks, make_unit_points, pairwise_mask_costs

Matches = list[tuple[Tensor, Tensor]]


class HungarianMatcher:
    """One-to-one assignment minimising a weighted sum of costs, per image (scipy's solver).

    Args:
        cost_class: weight of the focal-style class cost.
        cost_bbox: weight of the L1 distance between normalised cxcywh boxes.
        cost_giou: weight of the negative generalised IoU.
        alpha: focal alpha of the class cost.
        gamma: focal gamma of the class cost.
        cost_mask: weight of the mean mask BCE on points inside the target box (0 = off).
        cost_dice: weight of the mask Dice cost on the same points (0 = off).
        num_mask_points: points per target box for the mask costs (a fixed pseudo-random set).
    """

    def __init__(
        self,
        cost_class: float = 2.0,
        cost_bbox: float = 5.0,
        cost_giou: float = 2.0,
        alpha: float = 0.25,
        gamma: float = 2.0,
        cost_mask: float = 0.0,
        cost_dice: float = 0.0,
        num_mask_points: int = 256,
    ) -> None:
        weights = (cost_class, cost_bbox, cost_giou, cost_mask, cost_dice)
        if any(w < 0 for w in weights) or not any(w > 0 for w in weights):
            raise ValueError(f"matcher costs must be >= 0 and not all 0, got {weights}")
        self.cost_class = cost_class
        self.cost_bbox = cost_bbox
        self.cost_giou = cost_giou
        self.alpha = alpha
        self.gamma = gamma
        self.cost_mask = cost_mask
        self.cost_dice = cost_dice
        self.unit_points = make_unit_points(num_mask_points)  # [P, 2]

    @property
    def uses_masks(self) -> bool:
        """Whether mask costs take part (then outputs need mask embeddings and targets masks)."""
        return self.cost_mask > 0 or self.cost_dice > 0

    @torch.no_grad()
    def __call__(
        self,
        outputs: Mapping[str, Any],
        targets: Sequence[Mapping[str, Tensor]],
        mask_features: Tensor | None = None,
    ) -> Matches:
        """Match one layer's predictions to the targets.

        Args:
            outputs: `pred_logits` [B, Q, C] (pre-sigmoid), `pred_boxes` [B, Q, 4] normalised
                cxcywh, and for mask costs `pred_mask_embeds` [B, Q, D].
            targets: per image `labels` [N_b] int64, `boxes` [N_b, 4] normalised cxcywh, and for
                mask costs `masks` [N_b, H, W].
            mask_features: [B, D, h, w]; mask costs are used only when it is given, the layer has
                `pred_mask_embeds` and a mask cost weight is > 0.

        Returns:
            Per image (query indices [K_b], target indices [K_b]) int64 on the CPU,
            K_b = min(Q, N_b), sorted by query index.
        """
        use_masks = self.uses_masks and mask_features is not None and "pred_mask_embeds" in outputs
        costs = []
        for image, target in enumerate(targets):
            cost = self._box_and_class_cost(
                outputs["pred_logits"][image], outputs["pred_boxes"][image], target
            )  # [Q, N_b]
            if use_masks and target["boxes"].shape[0] > 0:
                assert mask_features is not None
                cost = cost + self._mask_cost(
                    outputs["pred_mask_embeds"][image], mask_features[image], target
                )
            costs.append(cost)
        # one device -> host copy for the whole batch
        flat = torch.cat([cost.flatten() for cost in costs]).cpu()  # [sum Q * N_b]
        flat = torch.nan_to_num(flat, nan=1.0)
        matches = []
        sizes = [c.numel() for c in costs]
        for cost, image_cost in zip(flat.split(sizes), costs, strict=True):
            query_idx, target_idx = linear_sum_assignment(cost.reshape(image_cost.shape))
            matches.append(
                (
                    torch.as_tensor(query_idx, dtype=torch.int64),
                    torch.as_tensor(target_idx, dtype=torch.int64),
                )
            )
        return matches

    def _box_and_class_cost(
        self, logits: Tensor, boxes: Tensor, target: Mapping[str, Tensor]
    ) -> Tensor:
        """[Q, C] logits and [Q, 4] boxes of one image -> [Q, N] weighted cost."""
        probs = logits.float().sigmoid()[:, target["labels"]]  # [Q, N]
        target_boxes = target["boxes"].float()  # [N, 4]
        negative = (1 - self.alpha) * (probs**self.gamma) * (-(1 - probs + 1e-8).log())  # [Q, N]
        positive = self.alpha * ((1 - probs) ** self.gamma) * (-(probs + 1e-8).log())  # [Q, N]
        class_cost = positive - negative  # [Q, N]
        l1_cost = torch.cdist(boxes.float(), target_boxes, p=1)  # [Q, N]
        giou_cost = -generalized_box_iou(
            box_cxcywh_to_xyxy(boxes.float()), box_cxcywh_to_xyxy(target_boxes)
        )  # [Q, N]
        return self.cost_bbox * l1_cost + self.cost_class * class_cost + self.cost_giou * giou_cost

    def _mask_cost(self, embeds: Tensor, features: Tensor, target: Mapping[str, Tensor]) -> Tensor:
        """[Q, D] embeddings and [D, h, w] features of one image -> [Q, N] weighted mask cost."""
        if "masks" not in target:
            raise KeyError("mask matching costs need a `masks` [N, H, W] entry in every target")
        soft = downsample_masks(
            target["masks"].to(features.device), (int(features.shape[-2]), int(features.shape[-1]))
        )
        bce, dice = pairwise_mask_costs(
            embeds.float(),
            features.float(),
            soft,
            target["boxes"].to(features.device),
            self.unit_points,
        )
        cost = self.cost_mask * bce + self.cost_dice * dice  # [Q, N]
        if "has_mask" in target:  # box-only targets are matched on class and box alone
            cost = cost * target["has_mask"].to(cost.device, cost.dtype)[None]
        return cost


def union_matches(per_layer_matches: Sequence[Matches]) -> Matches:
    """D-FINE's "go" matching set: the union of several layers' matches, one target per query.

    Every distinct (query, target) pair is counted over the layers; pairs are visited by decreasing
    count and each query keeps the first pair it appears in, so a query matched to different targets
    by different layers takes the most frequent one. The result is ordered as the official
    implementation orders it (by that visiting order).

    Args:
        per_layer_matches: for each layer, per image (query indices, target indices) int64.

    Returns:
        Per image (query indices [K_b], target indices [K_b]) int64, queries unique.
    """
    num_images = len(per_layer_matches[0])
    result = []
    for image in range(num_images):
        queries = torch.cat([layer[image][0] for layer in per_layer_matches])  # [M]
        targets = torch.cat([layer[image][1] for layer in per_layer_matches])  # [M]
        pairs = torch.stack([queries, targets], dim=1)  # [M, 2]
        unique_pairs, counts = torch.unique(pairs, return_counts=True, dim=0)  # [U, 2], [U]
        # the same (unstable) sort as the official code, so ties are broken identically
        visiting_order = unique_pairs[torch.argsort(counts, descending=True)]  # [U, 2]
        keep = _first_occurrences(visiting_order[:, 0])  # [U] bool
        kept = visiting_order[keep]  # [K, 2]
        result.append((kept[:, 0].long(), kept[:, 1].long()))
    return result


def _first_occurrences(values: Tensor) -> Tensor:
    """[M] int64 -> [M] bool, True where a value appears for the first time."""
    if values.numel() == 0:
        return torch.zeros(0, dtype=torch.bool, device=values.device)
    _, inverse = torch.unique(values, return_inverse=True)  # [M]
    positions = torch.arange(values.numel(), device=values.device)  # [M]
    first = torch.full((int(inverse.max()) + 1,), values.numel(), device=values.device)
    first = first.scatter_reduce(0, inverse, positions, reduce="amin")  # [distinct]
    return first[inverse] == positions
