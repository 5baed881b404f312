"""D-FINE's training criterion (VFL or DEIM's MAL, L1 + GIoU, FGL, DDF) plus instance-mask losses.

Input is the training-mode output dict of a D-FINE model (keys as in the official implementation):
the final layer at the top level (`pred_logits` [B, Q, C], `pred_boxes` [B, Q, 4] normalised cxcywh,
`pred_corners`, `ref_points`, `up`, `reg_scale`), and lists/dicts `aux_outputs`, `pre_outputs`,
`enc_aux_outputs` (+ `enc_meta`), `dn_outputs`, `dn_pre_outputs` (+ `dn_meta`). A segmentation model
adds a top-level `mask_features` [B, D, h, w] and `pred_mask_embeds` [B, Q, D] in the layers it
supervises.

Matching: every regular layer is matched on its own; VFL/MAL uses a layer's own matches, while
boxes, FGL/DDF and masks use the union ("go") of all regular layers' matches. Denoising layers use
the known denoising assignment. The caller's dict is never modified.

Query groups (`group_outputs`, Group DETR): each extra group is matched and scored on its own, and
every term the groups share is averaged over the groups (LW-DETR's normalisation), so an object's
supervision is spread over G queries without scaling the loss; denoising terms stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from dfseg.config.tasks import task_spec
from dfseg.training.criterion.detection import (
    box_losses,
    gather_matched_targets,
    matchability_aware_loss,
    matched_ious,
    matched_query_index,
    varifocal_loss,
)
from dfseg.training.criterion.distribution import (
    DistillationBalance,
    decoupled_distillation_loss,
    fine_grained_localization_loss,
)
from dfseg.training.criterion.inputs import CriterionInputError, check_targets
from dfseg.training.criterion.layers import LayerPlan, MatchFn, plan_layers
from dfseg.training.criterion.masks import (
    DEFAULT_MASK_BCE_WEIGHT,
    DEFAULT_MASK_DICE_WEIGHT,
    MaskTargets,
    box_restricted_mask_losses,
    prepare_mask_targets,
)
from dfseg.training.criterion.matcher import HungarianMatcher, Matches

__all__ = ["CriterionInputError", "DFineCriterion", "build_criterion"]

DFINE_WEIGHTS: dict[str, float] = {
    "loss_vfl": 1.0,
    "loss_mal": 1.0,
    "loss_bbox": 5.0,
    "loss_giou": 2.0,
    "loss_fgl": 0.15,
    "loss_ddf": 1.5,
}


@dataclass
class _CallState:
    """Shared by the layers of one criterion call (never kept on the module)."""

    up: Tensor | None
    reg_scale: Tensor | None
    mask_features: Tensor | None
    mask_targets: MaskTargets | None
    ddf_balance: DistillationBalance | None = None


LossFn = Callable[[LayerPlan, _CallState], dict[str, Tensor]]


class DFineCriterion(nn.Module):
    """D-FINE's set criterion with optional instance-mask terms.

    Args:
        matcher: assigns predictions to targets per layer.
        num_classes: number of object classes C.
        weight_dict: loss name (without suffix) -> weight; terms missing from it are dropped.
        losses: loss families to compute, among "vfl", "mal", "boxes", "local", "masks".
        alpha: VFL weight of negatives.
        gamma: VFL focal exponent.
        reg_max: edge-distribution bins minus one.
        mal_gamma: MAL exponent of IoU targets and negatives (DEIM uses 1.5).
        mal_alpha: optional MAL weight of negatives (None in DEIM).
        distill_temperature: DDF temperature.
    """

    def __init__(
        self,
        matcher: HungarianMatcher,
        num_classes: int,
        weight_dict: Mapping[str, float],
        losses: Sequence[str] = ("vfl", "boxes", "local"),
        alpha: float = 0.75,
        gamma: float = 2.0,
        reg_max: int = 32,
        mal_gamma: float = 1.5,
        mal_alpha: float | None = None,
        distill_temperature: float = 5.0,
    ) -> None:
        super().__init__()
        unknown = [name for name in losses if name not in self._loss_table()]
        if unknown:
            raise ValueError(
                f"unknown loss families {unknown}; known: {sorted(self._loss_table())}"
            )
        self.matcher = matcher
        self.num_classes = num_classes
        self.weight_dict = dict(weight_dict)
        self.losses = list(losses)
        self.alpha = alpha
        self.gamma = gamma
        self.reg_max = reg_max
        self.mal_gamma = mal_gamma
        self.mal_alpha = mal_alpha
        self.distill_temperature = distill_temperature

    def _loss_table(self) -> dict[str, LossFn]:
        return {
            "vfl": self.loss_vfl,
            "mal": self.loss_mal,
            "boxes": self.loss_boxes,
            "local": self.loss_local,
            "masks": self.loss_masks,
        }

    def get_loss(self, name: str, plan: LayerPlan, state: _CallState) -> dict[str, Tensor]:
        """Unweighted terms of loss family `name` for one layer (empty when it does not apply)."""
        return self._loss_table()[name](plan, state)

    def forward(
        self, outputs: Mapping[str, Any], targets: Sequence[Mapping[str, Tensor]]
    ) -> dict[str, Tensor]:
        """Compute every weighted loss term.

        Args:
            outputs: the model's training output dict (see the module docstring).
            targets: per image `labels` [N_b] int64 in [0, C), `boxes` [N_b, 4] normalised cxcywh,
                and with "masks" in `losses`, `masks` [N_b, H, W] uint8/bool at input resolution.

        Returns:
            name -> weighted scalar (float32), e.g. `loss_vfl`, `loss_bbox_aux_0`, `loss_ddf_dn_1`,
            `loss_mask_dice_dn_pre`.

        Raises:
            CriterionInputError: malformed outputs or targets.
        """
        losses = self._one_set(outputs, targets)
        groups = outputs.get("group_outputs") or []
        if not groups:
            return losses
        sums: dict[str, Tensor] = {}
        for group in groups:
            for term, value in self._one_set(group, targets).items():
                sums[term] = sums[term] + value if term in sums else value
        count = 1 + len(groups)
        return {
            term: (value + sums[term]) / count if term in sums else value
            for term, value in losses.items()
        }

    def _one_set(
        self, outputs: Mapping[str, Any], targets: Sequence[Mapping[str, Tensor]]
    ) -> dict[str, Tensor]:
        device = outputs["pred_logits"].device
        with torch.autocast(device_type=device.type, enabled=False):
            clean_targets = check_targets(
                targets, outputs, self.num_classes, needs_masks="masks" in self.losses
            )
            clean_targets = [{k: v.to(device) for k, v in t.items()} for t in clean_targets]
            state = self._call_state(outputs, clean_targets)
            losses: dict[str, Tensor] = {}
            for plan in plan_layers(outputs, clean_targets, self._matcher_for(state)):
                for name in self.losses:
                    for term, value in self.get_loss(name, plan, state).items():
                        if term in self.weight_dict:
                            losses[term + plan.suffix] = value * self.weight_dict[term]
        return losses

    # ----------------------------------------------------------------------------------- losses

    def loss_vfl(self, plan: LayerPlan, state: _CallState) -> dict[str, Tensor]:
        """Varifocal loss (`loss_vfl`) with the layer's own matches."""
        logits, labels, ious = self._class_inputs(plan)
        loss = varifocal_loss(
            logits, plan.class_matches, labels, ious, plan.class_norm, self.alpha, self.gamma
        )
        return {"loss_vfl": loss}

    def loss_mal(self, plan: LayerPlan, state: _CallState) -> dict[str, Tensor]:
        """DEIM's matchability-aware loss (`loss_mal`) with the layer's own matches."""
        logits, labels, ious = self._class_inputs(plan)
        loss = matchability_aware_loss(
            logits,
            plan.class_matches,
            labels,
            ious,
            plan.class_norm,
            self.mal_gamma,
            self.mal_alpha,
        )
        return {"loss_mal": loss}

    def loss_boxes(self, plan: LayerPlan, state: _CallState) -> dict[str, Tensor]:
        """L1 (`loss_bbox`) and GIoU (`loss_giou`) on the union matches."""
        index = matched_query_index(plan.box_matches)
        pred = plan.outputs["pred_boxes"][index]  # [K, 4]
        target = gather_matched_targets(plan.targets, plan.box_matches, "boxes")  # [K, 4]
        return box_losses(pred, target, plan.box_norm)

    def loss_local(self, plan: LayerPlan, state: _CallState) -> dict[str, Tensor]:
        """FGL (`loss_fgl`) and, for layers with a teacher, DDF (`loss_ddf`)."""
        outputs = plan.outputs
        if "pred_corners" not in outputs:
            return {}
        if state.up is None or state.reg_scale is None:
            raise CriterionInputError(
                "outputs with `pred_corners` need top-level `up` and `reg_scale`"
            )
        index = matched_query_index(plan.box_matches)
        target_boxes = gather_matched_targets(plan.targets, plan.box_matches, "boxes")  # [K, 4]
        ious = matched_ious(outputs["pred_boxes"][index], target_boxes)  # [K]
        terms = {
            "loss_fgl": fine_grained_localization_loss(
                outputs["pred_corners"][index],
                outputs["ref_points"][index],
                target_boxes,
                ious,
                plan.box_norm,
                self.reg_max,
                state.reg_scale,
                state.up,
            )
        }
        if "teacher_corners" in outputs:
            balance = state.ddf_balance if plan.is_denoising else None
            terms["loss_ddf"], balance = decoupled_distillation_loss(
                outputs["pred_corners"],
                outputs["teacher_corners"],
                outputs["teacher_logits"],
                index,
                ious,
                balance,
                self.distill_temperature,
            )
            if not plan.is_denoising:
                state.ddf_balance = balance
        return terms

    def loss_masks(self, plan: LayerPlan, state: _CallState) -> dict[str, Tensor]:
        """Box-restricted mask BCE (`loss_mask_bce`) and Dice (`loss_mask_dice`)."""
        if "pred_mask_embeds" not in plan.outputs or state.mask_features is None:
            return {}
        assert state.mask_targets is not None
        return box_restricted_mask_losses(
            plan.outputs["pred_mask_embeds"],
            state.mask_features,
            plan.box_matches,
            state.mask_targets,
            plan.box_norm,
        )

    def _class_inputs(self, plan: LayerPlan) -> tuple[Tensor, Tensor, Tensor]:
        """(logits [B, Q, C], matched labels [K], matched detached IoUs [K]) of a layer."""
        index = matched_query_index(plan.class_matches)
        target_boxes = gather_matched_targets(plan.targets, plan.class_matches, "boxes")
        labels = gather_matched_targets(plan.targets, plan.class_matches, "labels")
        ious = matched_ious(plan.outputs["pred_boxes"][index], target_boxes)
        return plan.outputs["pred_logits"], labels, ious

    def _matcher_for(self, state: _CallState) -> MatchFn:
        """The matcher bound to this call's mask features (used only with mask costs)."""

        def match(layer: dict[str, Any], targets: Sequence[dict[str, Tensor]]) -> Matches:
            return self.matcher(layer, targets, mask_features=state.mask_features)

        return match

    def _call_state(
        self, outputs: Mapping[str, Any], targets: Sequence[dict[str, Tensor]]
    ) -> _CallState:
        mask_features = outputs.get("mask_features") if "masks" in self.losses else None
        mask_targets = None
        if mask_features is not None:
            mask_features = mask_features.float()
            size = (int(mask_features.shape[-2]), int(mask_features.shape[-1]))
            mask_targets = prepare_mask_targets(targets, size, mask_features.device)
        return _CallState(
            up=outputs.get("up"),
            reg_scale=outputs.get("reg_scale"),
            mask_features=mask_features,
            mask_targets=mask_targets,
        )


def build_criterion(
    num_classes: int,
    task: str,
    reg_max: int = 32,
    use_mal: bool = False,
    mask_bce_weight: float = DEFAULT_MASK_BCE_WEIGHT,
    mask_dice_weight: float = DEFAULT_MASK_DICE_WEIGHT,
    mask_cost_weight: float = 0.0,
    mask_dice_cost_weight: float = 0.0,
    cls_weight: float = 1.0,
) -> DFineCriterion:
    """D-FINE's criterion with its COCO settings, for `task` "detect" or "segment".

    Args:
        num_classes: number of object classes.
        task: a registered task; one with instance masks ("segment") adds `loss_mask_bce` /
            `loss_mask_dice`.
        reg_max: edge-distribution bins minus one (32 in every D-FINE size).
        use_mal: DEIM's matchability-aware loss (`loss_mal`) instead of VFL.
        mask_bce_weight: weight of the box-restricted mask BCE.
        mask_dice_weight: weight of the box-restricted mask Dice.
        mask_cost_weight: matcher weight of the mask BCE cost (0 keeps D-FINE's box matching).
        mask_dice_cost_weight: matcher weight of the mask Dice cost.
        cls_weight: weight of the classification loss (VFL or MAL; D-FINE's is 1).
    """
    segment = task_spec(task).instance_masks  # ValueError naming the tasks
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    matcher = HungarianMatcher(
        cost_class=2.0,
        cost_bbox=5.0,
        cost_giou=2.0,
        alpha=0.25,
        gamma=2.0,
        cost_mask=mask_cost_weight if segment else 0.0,
        cost_dice=mask_dice_cost_weight if segment else 0.0,
    )
    weights = dict(DFINE_WEIGHTS)
    weights.update(loss_vfl=cls_weight, loss_mal=cls_weight)
    losses = ["mal" if use_mal else "vfl", "boxes", "local"]
    if segment:
        weights.update(loss_mask_bce=mask_bce_weight, loss_mask_dice=mask_dice_weight)
        losses.append("masks")
    return DFineCriterion(matcher, num_classes, weights, losses, reg_max=reg_max)
