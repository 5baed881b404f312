"""Instance-mask losses and matching costs, restricted to each ground-truth box.

The mask logits of a query are the dot product of its mask embedding [D] with the per-pixel mask
features [D, h, w], which sit at 1/4 of the network input resolution.

Targets: ground-truth masks arrive at the input resolution [N, H, W] and are area-downsampled to
(h, w), so the target of a low-resolution pixel is the fraction of its input pixels that the object
covers (a soft target in [0, 1]). Thresholding instead would erase every part of an object thinner
than the 4-pixel stride (poles, legs, thin tools) and would jitter boundaries by up to half a
stride; BCE and Dice are both well defined for soft targets.

Region: only the low-resolution pixels that overlap the ground-truth box count (boxes are widened
to at least one pixel so tiny or zero-width boxes still supervise one pixel). Outside the box the
box head already rejects the query, and inside it the mask only has to separate the object from
what surrounds it (Mask R-CNN's mask loss is likewise computed inside the box). This also keeps
the mask loss of one object independent of far-away objects and background.

Box-only instances (a dataset that mixes polygons and plain boxes; `has_mask` False) train the
box losses but not these: their stand-in mask, the filled box, would teach rectangles. The sums
are normalised by the matched boxes that have masks (the layer's `num_boxes` scaled by their
share), so a batch with few masked instances does not get a weaker mask loss.

Default weights (5 for BCE, 5 for Dice) follow Mask2Former / Mask DINO, whose DETR-style heads put
these two terms beside a box L1 weight of 5 and a GIoU weight of 2 as D-FINE does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from dfseg.ops.boxes import box_cxcywh_to_xyxy

Matches = Sequence[tuple[Tensor, Tensor]]

DEFAULT_MASK_BCE_WEIGHT = 5.0
DEFAULT_MASK_DICE_WEIGHT = 5.0


@dataclass(frozen=True)
class MaskTargets:
    """Per-image mask targets at the mask-feature resolution, prepared once per loss call.

    Attributes:
        soft_masks: per image [N_b, h, w] float32 in [0, 1] (area-downsampled ground truth).
        box_regions: per image [N_b, h, w] float32 in {0, 1}, 1 on pixels overlapping the GT box.
        has_mask: per image [N_b] bool, False for box-only instances (left out of the losses);
            None: every instance has a mask.
    """

    soft_masks: list[Tensor]
    box_regions: list[Tensor]
    has_mask: list[Tensor] | None = None


def downsample_masks(masks: Tensor, size: tuple[int, int]) -> Tensor:
    """Area-downsample binary masks to soft targets.

    Args:
        masks: [N, H, W] uint8 or bool (any non-zero value is foreground), input resolution.
        size: (h, w) of the mask features.

    Returns:
        [N, h, w] float32, the covered fraction of each low-resolution pixel.
    """
    if masks.shape[0] == 0:
        return masks.new_zeros((0, *size), dtype=torch.float32)
    binary = (masks != 0).to(torch.float32)[:, None]  # [N, 1, H, W]
    return F.interpolate(binary, size=size, mode="area")[:, 0]  # [N, h, w]


def box_region_weights(boxes_cxcywh: Tensor, size: tuple[int, int]) -> Tensor:
    """Indicator of the low-resolution pixels that overlap each box.

    Args:
        boxes_cxcywh: [N, 4] normalised cxcywh.
        size: (h, w) of the mask features.

    Returns:
        [N, h, w] float32 in {0, 1}. A box narrower than one pixel is widened to one pixel
        around its centre; a box entirely outside the image gives an empty region.
    """
    height, width = size
    scale = boxes_cxcywh.new_tensor([width, height, width, height])
    x1, y1, x2, y2 = (box_cxcywh_to_xyxy(boxes_cxcywh.float()) * scale).unbind(-1)  # [N] each
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    x1, x2 = torch.minimum(x1, cx - 0.5), torch.maximum(x2, cx + 0.5)
    y1, y2 = torch.minimum(y1, cy - 0.5), torch.maximum(y2, cy + 0.5)
    cols = torch.arange(width, device=boxes_cxcywh.device, dtype=torch.float32)  # [w]
    rows = torch.arange(height, device=boxes_cxcywh.device, dtype=torch.float32)  # [h]
    # pixel j spans [j, j + 1): it overlaps [x1, x2] when j + 1 > x1 and j < x2
    in_cols = (cols[None] + 1 > x1[:, None]) & (cols[None] < x2[:, None])  # [N, w]
    in_rows = (rows[None] + 1 > y1[:, None]) & (rows[None] < y2[:, None])  # [N, h]
    return (in_rows[:, :, None] & in_cols[:, None, :]).to(torch.float32)  # [N, h, w]


def prepare_mask_targets(
    targets: Sequence[dict[str, Tensor]], size: tuple[int, int], device: torch.device
) -> MaskTargets:
    """Downsample every image's masks and build its box regions at the mask-feature size.

    Args:
        targets: per image a dict with `masks` [N_b, H, W] and `boxes` [N_b, 4] normalised
            cxcywh, optionally `has_mask` [N_b] bool (False: a box-only instance).
        size: (h, w) of the mask features.
        device: where the mask features live.
    """
    soft = [downsample_masks(t["masks"].to(device), size) for t in targets]
    regions = [box_region_weights(t["boxes"].to(device), size) for t in targets]
    has_mask = None
    if any("has_mask" in t and not bool(t["has_mask"].all()) for t in targets):
        has_mask = [
            t["has_mask"].to(device) if "has_mask" in t else torch.ones(len(s), dtype=torch.bool)
            for t, s in zip(targets, soft, strict=True)
        ]
    return MaskTargets(soft_masks=soft, box_regions=regions, has_mask=has_mask)


def box_restricted_mask_losses(
    mask_embeds: Tensor,
    mask_features: Tensor,
    matches: Matches,
    mask_targets: MaskTargets,
    num_boxes: float,
) -> dict[str, Tensor]:
    """BCE and Dice of the matched queries' masks on the pixels inside their GT boxes.

    Logits are computed only for matched queries, one image at a time, under activation
    checkpointing: the [K_b, h, w] intermediates are recomputed in the backward pass instead of
    being kept (a denoising layer at 640 px holds ~100 matches per image, 10 MB per tensor each).

    Args:
        mask_embeds: [B, Q, D] per-query mask embeddings of one decoder layer.
        mask_features: [B, D, h, w] per-pixel mask features.
        matches: per image (query indices [K_b], target indices [K_b]), int64.
        mask_targets: from `prepare_mask_targets` at size (h, w).
        num_boxes: normaliser (the layer's number of matched boxes, at least 1).

    Returns:
        {"loss_mask_bce": [], "loss_mask_dice": []}, unweighted, summed over the matches whose
        target has a mask / (num_boxes times the share of such matches).
    """
    needs_grad = torch.is_grad_enabled() and (
        mask_embeds.requires_grad or mask_features.requires_grad
    )
    matches, num_boxes = _masked_matches(matches, mask_targets, num_boxes)
    per_image = []
    for image, (query_idx, target_idx) in enumerate(matches):
        if len(query_idx) == 0:
            continue
        inputs = (
            mask_embeds[image, query_idx],  # [K_b, D]
            mask_features[image],  # [D, h, w]
            mask_targets.soft_masks[image],  # [N_b, h, w]
            mask_targets.box_regions[image],  # [N_b, h, w]
            target_idx.to(mask_features.device),  # [K_b]
        )
        if needs_grad:
            losses = checkpoint(
                _per_match_losses, *inputs, use_reentrant=False, preserve_rng_state=False
            )
        else:
            losses = _per_match_losses(*inputs)
        per_image.append(losses)  # [K_b, 2]
    if not per_image:
        # keep the graph connected (DDP needs every parameter to take part) with an exact zero
        zero = (mask_embeds.sum() + mask_features.sum()) * 0.0
        return {"loss_mask_bce": zero, "loss_mask_dice": zero}
    totals = torch.cat(per_image).sum(0) / num_boxes  # [2]
    return {"loss_mask_bce": totals[0], "loss_mask_dice": totals[1]}


def _masked_matches(
    matches: Matches, mask_targets: MaskTargets, num_boxes: float
) -> tuple[Matches, float]:
    """The matches whose target has a mask, and the normaliser scaled by their share."""
    if mask_targets.has_mask is None:
        return matches, num_boxes
    kept = []
    for (query_idx, target_idx), has_mask in zip(matches, mask_targets.has_mask, strict=True):
        keep = has_mask[target_idx.to(has_mask.device)].to(query_idx.device)
        kept.append((query_idx[keep], target_idx[keep]))
    total = sum(len(q) for q, _ in matches)
    masked = sum(len(q) for q, _ in kept)
    share = masked / total if total else 1.0
    return kept, max(num_boxes * share, 1e-6) if masked else num_boxes


def _per_match_losses(
    embeds: Tensor, features: Tensor, soft_masks: Tensor, regions: Tensor, target_idx: Tensor
) -> Tensor:
    """One image's matches -> [K_b, 2] (mean BCE over in-box pixels, Dice over in-box pixels)."""
    logits = torch.einsum("kd,dhw->khw", embeds, features).flatten(1)  # [K_b, h * w]
    soft = soft_masks[target_idx].flatten(1)  # [K_b, h * w]
    region = regions[target_idx].flatten(1)  # [K_b, h * w]
    pixel_count = region.sum(1).clamp(min=1.0)  # [K_b]
    bce = F.binary_cross_entropy_with_logits(logits, soft, weight=region, reduction="none")
    bce_per_match = bce.sum(1) / pixel_count  # [K_b]
    probs = logits.sigmoid() * region  # [K_b, h * w]
    kept_soft = soft * region  # [K_b, h * w]
    overlap = (probs * kept_soft).sum(1)  # [K_b]
    dice_per_match = 1 - (2 * overlap + 1) / (probs.sum(1) + kept_soft.sum(1) + 1)  # [K_b]
    return torch.stack([bce_per_match, dice_per_match], dim=1)


def make_unit_points(num_points: int, seed: int = 0) -> Tensor:
    """A fixed pseudo-random set of points in the unit square, drawn without touching global RNG.

    Returns:
        [num_points, 2] float32 (x, y) in [0, 1).
    """
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(num_points, 2, generator=generator)


@torch.no_grad()
def pairwise_mask_costs(
    mask_embeds: Tensor,
    mask_features: Tensor,
    soft_masks: Tensor,
    boxes_cxcywh: Tensor,
    unit_points: Tensor,
) -> tuple[Tensor, Tensor]:
    """Mean BCE and Dice cost of every (query, target) pair on points inside the target's box.

    The same `unit_points` are mapped into every target box, so tiny boxes get as many points as
    large ones and the cost, like the loss, ignores everything outside the box.

    Args:
        mask_embeds: [Q, D] one image's query embeddings.
        mask_features: [D, h, w] that image's mask features.
        soft_masks: [N, h, w] soft targets at the mask-feature resolution.
        boxes_cxcywh: [N, 4] normalised cxcywh.
        unit_points: [P, 2] points in the unit square.

    Returns:
        (bce_cost [Q, N], dice_cost [Q, N]), float32.
    """
    boxes_xyxy = box_cxcywh_to_xyxy(boxes_cxcywh.float())  # [N, 4]
    top_left, size = boxes_xyxy[:, None, :2], (boxes_xyxy[:, 2:] - boxes_xyxy[:, :2])[:, None]
    points = top_left + unit_points.to(boxes_xyxy.device)[None] * size  # [N, P, 2] normalised xy
    grid = points * 2 - 1  # grid_sample wants [-1, 1]
    features = F.grid_sample(mask_features[None], grid[None], align_corners=False)[0]  # [D, N, P]
    logits = torch.einsum("qd,dnp->qnp", mask_embeds, features)  # [Q, N, P]
    targets = F.grid_sample(soft_masks[:, None], grid[:, None], align_corners=False)  # [N,1,1,P]
    targets = targets[:, 0, 0]  # [N, P]
    num_points = unit_points.shape[0]
    # BCE(x, t) = softplus(x) - x * t
    bce = (F.softplus(logits).sum(-1) - (logits * targets[None]).sum(-1)) / num_points  # [Q, N]
    probs = logits.sigmoid()  # [Q, N, P]
    overlap = (probs * targets[None]).sum(-1)  # [Q, N]
    dice = 1 - (2 * overlap + 1) / (probs.sum(-1) + targets.sum(-1)[None] + 1)  # [Q, N]
    return bce, dice
