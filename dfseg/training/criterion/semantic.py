"""The semantic task's criterion: per-pixel cross-entropy (optionally class-weighted, optionally
on the hardest pixels only: OHEM) plus an optional soft Dice over the classes.

Losses are computed in float32 with autocast off, whatever the logits' dtype."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dfseg.ops.semantic import IGNORE_INDEX, index_map_from_masks


class SemanticCriterion(nn.Module):
    """Pixel losses of `semantic_logits` against the images' class regions.

    Args:
        num_classes: C.
        ce_weight: weight of the cross-entropy (`loss_sem_ce`).
        dice_weight: weight of the soft Dice (`loss_sem_dice`, absent when 0): per class
            `1 - (2 * sum(p * t) + 1) / (sum(p) + sum(t) + 1)` over the labelled pixels of the
            whole batch (p softmax probability, t one-hot target), averaged over all C classes.
            Classes absent from the batch's labels count too: their term is small only while
            little probability goes to them, so the Dice also discourages absent classes.
        class_weights: [C] cross-entropy weight per class (None: equal); the loss is the
            weighted mean, as `F.cross_entropy`'s.
        ohem_keep: online hard example mining, in (0, 1]: the cross-entropy averages only
            this fraction of the labelled pixels (at least one), those with the largest
            unweighted loss (None: all of them; 1.0 equals None).
        ignore_index: label value of pixels without a label (no loss).

    Raises:
        ValueError: a non-positive class count, negative weights, class_weights of another
            length than num_classes, ohem_keep outside (0, 1].
    """

    class_weights: Tensor | None

    def __init__(
        self,
        num_classes: int,
        ce_weight: float = 1.0,
        dice_weight: float = 0.0,
        class_weights: Sequence[float] | None = None,
        ohem_keep: float | None = None,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if ce_weight < 0 or dice_weight < 0:
            raise ValueError(
                f"loss weights must be >= 0, got ce_weight {ce_weight}, dice_weight {dice_weight}"
            )
        if ohem_keep is not None and not 0 < ohem_keep <= 1:
            raise ValueError(f"ohem_keep must be in (0, 1], got {ohem_keep}")
        weights = _class_weights(class_weights, num_classes)
        self.register_buffer("class_weights", weights, persistent=False)
        self.num_classes = num_classes
        self.ce_weight = ce_weight
        self.dice_weight = dice_weight
        self.ohem_keep = ohem_keep
        self.ignore_index = ignore_index

    def forward(self, outputs: dict[str, Any], targets: list[dict[str, Any]]) -> dict[str, Tensor]:
        """Losses, each multiplied by its weight.

        Args:
            outputs: `semantic_logits` [B, C, H, W] (resized bilinearly to the targets' size
                when it differs).
            targets: B dicts, `masks` [N, H', W'] {0, 1} and `labels` [N] int64: each image's
                class regions (uncovered pixels are ignored).

        Returns:
            `loss_sem_ce`, and `loss_sem_dice` when its weight is > 0: float32 scalars, 0 (with
            the graph attached) for a batch without a labelled pixel.
        """
        logits = outputs["semantic_logits"]
        if logits.ndim != 4 or logits.shape[1] != self.num_classes:
            raise ValueError(
                f"semantic_logits must be [B, {self.num_classes}, H, W], got {tuple(logits.shape)}"
            )
        with torch.autocast(device_type=logits.device.type, enabled=False):
            logits, labels = self._align(logits.float(), targets)  # [B, C, H, W], [B, H, W]
            labelled = labels != self.ignore_index  # [B, H, W]
            if not labelled.any():
                zero = logits.sum() * 0.0  # keeps the graph: backward works, changes nothing
                return {name: zero for name in self._loss_names()}
            losses = {"loss_sem_ce": self.ce_weight * self._cross_entropy(logits, labels, labelled)}
            if self.dice_weight > 0:
                losses["loss_sem_dice"] = self.dice_weight * self._dice(logits, labels, labelled)
        return losses

    def _loss_names(self) -> list[str]:
        return ["loss_sem_ce", "loss_sem_dice"] if self.dice_weight > 0 else ["loss_sem_ce"]

    def _align(self, logits: Tensor, targets: list[dict[str, Any]]) -> tuple[Tensor, Tensor]:
        """The targets' index maps [B, H', W'] and the logits resized to them [B, C, H', W']."""
        labels = torch.stack(
            [index_map_from_masks(t["masks"], t["labels"], self.ignore_index) for t in targets]
        ).to(logits.device)  # [B, H', W']
        if labels.shape[0] != logits.shape[0]:
            raise ValueError(f"{labels.shape[0]} targets for {logits.shape[0]} images")
        if labels.shape[-2:] != logits.shape[-2:]:
            logits = F.interpolate(
                logits, size=labels.shape[-2:], mode="bilinear", align_corners=False
            )
        return logits, labels

    def _cross_entropy(self, logits: Tensor, labels: Tensor, labelled: Tensor) -> Tensor:
        weight = None if self.class_weights is None else self.class_weights.to(logits.device)
        if self.ohem_keep is None:
            return F.cross_entropy(logits, labels, weight=weight, ignore_index=self.ignore_index)
        per_pixel = F.cross_entropy(
            logits, labels, ignore_index=self.ignore_index, reduction="none"
        )[labelled]  # [P]
        keep = max(1, round(self.ohem_keep * per_pixel.numel()))
        hardest = per_pixel.topk(keep)  # the k largest unweighted losses
        if weight is None:
            return hardest.values.mean()
        pixel_weights = weight[labels[labelled][hardest.indices]]  # [k]
        return (pixel_weights * hardest.values).sum() / pixel_weights.sum().clamp_min(1e-12)

    def _dice(self, logits: Tensor, labels: Tensor, labelled: Tensor) -> Tensor:
        probs = logits.softmax(dim=1).permute(0, 2, 3, 1)[labelled]  # [P, C]
        one_hot = F.one_hot(labels[labelled], self.num_classes).float()  # [P, C]
        intersection = (probs * one_hot).sum(dim=0)  # [C]
        total = probs.sum(dim=0) + one_hot.sum(dim=0)  # [C]
        return (1 - (2 * intersection + 1) / (total + 1)).mean()


def _class_weights(class_weights: Sequence[float] | None, num_classes: int) -> Tensor | None:
    """[C] float32 weights, checked; None stays None."""
    if class_weights is None:
        return None
    values = [float(v) for v in class_weights]
    if len(values) != num_classes:
        raise ValueError(f"class_weights needs {num_classes} values (one per class), got {values}")
    if min(values) < 0:
        raise ValueError(f"class_weights must be >= 0, got {values}")
    return torch.tensor(values, dtype=torch.float32)
