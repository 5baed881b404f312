"""Validation of what the training criterion receives, with messages that say how to fix it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor


class CriterionInputError(ValueError):
    """The model outputs or the targets given to the criterion are malformed."""


def check_targets(
    targets: Sequence[Mapping[str, Tensor]],
    outputs: Mapping[str, Any],
    num_classes: int,
    needs_masks: bool,
) -> list[dict[str, Tensor]]:
    """Check the targets against the outputs and return float32-box copies (inputs untouched).

    Args:
        targets: per image `labels` [N] int, `boxes` [N, 4] normalised cxcywh, and when
            `needs_masks`, `masks` [N, H, W] at the network input resolution.
        outputs: the model's training output dict (`pred_logits` [B, Q, C] at least).
        num_classes: C; labels must lie in [0, C).
        needs_masks: whether mask losses are on (then `mask_features` [B, D, h, w] must be there).

    Returns:
        Per image a new dict with `labels` int64, `boxes` float32 and, if needed, `masks`.

    Raises:
        CriterionInputError: naming the image and the field at fault.
    """
    logits = outputs.get("pred_logits")
    if not isinstance(logits, Tensor) or logits.dim() != 3:
        raise CriterionInputError(
            "outputs need `pred_logits` [B, Q, C] (the model's training output)"
        )
    if len(targets) != logits.shape[0]:
        raise CriterionInputError(
            f"got {len(targets)} target dicts for a batch of {logits.shape[0]} images: "
            "pass one dict per image, in batch order"
        )
    mask_features = outputs.get("mask_features") if needs_masks else None
    if needs_masks and not (
        isinstance(mask_features, Tensor) and isinstance(outputs.get("pred_mask_embeds"), Tensor)
    ):
        raise CriterionInputError(
            "the segment criterion needs `mask_features` [B, D, h, w] and `pred_mask_embeds` "
            "[B, Q, D] in the outputs: build the model with the segment task, or the criterion "
            "with task='detect'"
        )
    checked = [_check_one(i, target, mask_features) for i, target in enumerate(targets)]
    _check_label_range(checked, num_classes)
    return checked


def _check_label_range(targets: Sequence[Mapping[str, Tensor]], num_classes: int) -> None:
    """Labels in [0, num_classes), checked with one device sync for the whole batch."""
    labels = [t["labels"] for t in targets]
    if sum(len(image_labels) for image_labels in labels) == 0:
        return
    everything = torch.cat(labels)
    low, high = torch.stack([everything.min(), everything.max()]).tolist()
    if low >= 0 and high < num_classes:
        return
    for image, image_labels in enumerate(labels):
        bad = image_labels[(image_labels < 0) | (image_labels >= num_classes)]
        if len(bad):
            raise CriterionInputError(
                f"target {image}: labels must lie in [0, {num_classes}), got {bad.tolist()}: "
                "class ids are 0-based and contiguous; check num_classes against the dataset"
            )


def _check_one(
    image: int, target: Mapping[str, Tensor], mask_features: Tensor | None
) -> dict[str, Tensor]:
    for key in ("labels", "boxes"):
        if key not in target:
            raise CriterionInputError(f"target {image} has no `{key}` (keys: {sorted(target)})")
    labels, boxes = target["labels"], target["boxes"]
    if labels.dim() != 1 or labels.is_floating_point():
        raise CriterionInputError(
            f"target {image}: `labels` must be a 1-D integer tensor, got {tuple(labels.shape)} "
            f"{labels.dtype}"
        )
    count = labels.shape[0]
    if boxes.shape != (count, 4):
        raise CriterionInputError(
            f"target {image}: `boxes` must be [{count}, 4] normalised cxcywh (one per label), "
            f"got {tuple(boxes.shape)}"
        )
    checked = {"labels": labels.long(), "boxes": boxes.float()}
    if mask_features is not None:
        checked["masks"] = _check_masks(image, target, count, mask_features)
        if "has_mask" in target:
            has_mask = target["has_mask"]
            if has_mask.shape != (count,):
                raise CriterionInputError(
                    f"target {image}: `has_mask` must be [{count}] bool (one per label), "
                    f"got {tuple(has_mask.shape)}"
                )
            checked["has_mask"] = has_mask.to(torch.bool)
    return checked


def _check_masks(
    image: int, target: Mapping[str, Tensor], count: int, mask_features: Tensor
) -> Tensor:
    masks = target.get("masks")
    if masks is None:
        raise CriterionInputError(f"target {image} has no `masks` [N, H, W] (segment task)")
    if masks.dim() != 3 or masks.shape[0] != count:
        raise CriterionInputError(
            f"target {image}: `masks` must be [{count}, H, W] (one per label), "
            f"got {tuple(masks.shape)}"
        )
    height, width = masks.shape[-2:]
    feature_height, feature_width = mask_features.shape[-2:]
    # masks at the input resolution have the features' aspect ratio; masks at the original image
    # size (a common mistake) usually do not
    if abs(height * feature_width - width * feature_height) > 0.02 * height * feature_width:
        raise CriterionInputError(
            f"target {image}: masks are {height}x{width} but the mask features are "
            f"{feature_height}x{feature_width}: give masks at the network input resolution"
        )
    if masks.is_floating_point():
        return masks > 0.5
    return masks.to(torch.bool) if masks.dtype != torch.uint8 else masks
