"""Which output layers of a D-FINE model are supervised, with which matches and normalisers.

Regular layers (final, `aux_outputs`, `pre_outputs`, `enc_aux_outputs`) are each matched on their
own. The classification loss uses a layer's own matches; box, distribution and mask losses use the
union ("go") of all regular layers' matches. Denoising layers (`dn_outputs`, `dn_pre_outputs`) use
the known assignment from `dn_meta`. The order of `plan_layers` is the official visiting order:
regular layers come first because denoising layers reuse their DDF balance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from dfseg.training.criterion.inputs import CriterionInputError
from dfseg.training.criterion.matcher import Matches, union_matches

MatchFn = Callable[[dict[str, Any], Sequence[dict[str, Tensor]]], Matches]


@dataclass(frozen=True)
class LayerPlan:
    """What one output layer is supervised with.

    Attributes:
        suffix: appended to the loss names ("", "_aux_0", "_pre", "_enc_0", "_dn_1", "_dn_pre").
        outputs: the layer's tensors in float32 (a new dict; the caller's is untouched).
        targets: per-image targets (class-agnostic labels for a class-agnostic encoder).
        class_matches: matches for the classification loss.
        box_matches: matches for box, distribution and mask losses.
        class_norm: normaliser of the classification loss.
        box_norm: normaliser of the other losses.
        is_denoising: denoising layers reuse the regular layers' DDF balance.
    """

    suffix: str
    outputs: dict[str, Any]
    targets: Sequence[dict[str, Tensor]]
    class_matches: Matches
    box_matches: Matches
    class_norm: float
    box_norm: float
    is_denoising: bool = False


def plan_layers(
    outputs: Mapping[str, Any], targets: Sequence[dict[str, Tensor]], match: MatchFn
) -> list[LayerPlan]:
    """Match every regular layer, form the union matches, and list every supervised layer.

    Args:
        outputs: the model's training output dict.
        targets: checked per-image targets (`labels`, `boxes` normalised cxcywh, ...).
        match: matches one layer's float32 tensors to targets.

    Returns:
        Plans in the order final, aux_i, pre, enc_i, dn_i, dn_pre (those present).
    """
    final = float_tensors(outputs)
    named = [("", final)]
    named += [(f"_aux_{i}", float_tensors(a)) for i, a in enumerate(outputs.get("aux_outputs", []))]
    if "pre_outputs" in outputs:
        named.append(("_pre", float_tensors(outputs["pre_outputs"])))
    enc_targets = _class_agnostic(targets) if _is_class_agnostic(outputs) else targets
    named_enc = [
        (f"_enc_{i}", float_tensors(e)) for i, e in enumerate(outputs.get("enc_aux_outputs", []))
    ]

    own_matches = [match(layer, targets) for _, layer in named]
    own_matches += [match(layer, enc_targets) for _, layer in named_enc]
    go_matches = union_matches(own_matches) if len(own_matches) > 1 else own_matches[0]

    num_boxes = average_count(sum(len(t["labels"]) for t in targets), final["pred_logits"])
    go_norm = average_count(sum(len(q) for q, _ in go_matches), final["pred_logits"])
    layer_targets = [targets] * len(named) + [enc_targets] * len(named_enc)
    plans = [
        LayerPlan(suffix, layer, tgts, own, go_matches, num_boxes, go_norm)
        for (suffix, layer), own, tgts in zip(
            named + named_enc, own_matches, layer_targets, strict=True
        )
    ]
    return plans + _denoising_plans(outputs, targets, num_boxes)


def _denoising_plans(
    outputs: Mapping[str, Any], targets: Sequence[dict[str, Tensor]], num_boxes: float
) -> list[LayerPlan]:
    if "dn_outputs" not in outputs:
        return []
    meta = outputs.get("dn_meta")
    if meta is None:
        raise CriterionInputError("outputs have `dn_outputs` but no `dn_meta`")
    num_groups = int(meta["dn_num_group"])
    matches = denoising_matches(meta["dn_positive_idx"], num_groups, targets)
    norm = max(num_boxes * num_groups, 1.0)
    layers = [(f"_dn_{i}", layer) for i, layer in enumerate(outputs["dn_outputs"])]
    if "dn_pre_outputs" in outputs:
        layers.append(("_dn_pre", outputs["dn_pre_outputs"]))
    return [
        LayerPlan(suffix, float_tensors(layer), targets, matches, matches, norm, norm, True)
        for suffix, layer in layers
    ]


def denoising_matches(
    positive_idx: Sequence[Tensor], num_groups: int, targets: Sequence[Mapping[str, Tensor]]
) -> Matches:
    """The known assignment of denoising queries: group g's positive query i -> target i.

    Args:
        positive_idx: per image [num_groups * N_b] int64 query indices of the positive queries.
        num_groups: denoising groups.
        targets: per image `labels` [N_b].

    Returns:
        Per image (query indices, target indices 0..N_b-1 tiled num_groups times).

    Raises:
        CriterionInputError: when the denoising queries were built for other targets.
    """
    matches = []
    for image, target in enumerate(targets):
        num_targets = len(target["labels"])
        device = target["labels"].device
        if num_targets == 0:
            empty = torch.zeros(0, dtype=torch.int64, device=device)
            matches.append((empty, empty))
            continue
        target_idx = torch.arange(num_targets, dtype=torch.int64, device=device).tile(num_groups)
        query_idx = positive_idx[image].to(device)
        if len(query_idx) != len(target_idx):
            raise CriterionInputError(
                f"dn_meta['dn_positive_idx'][{image}] has {len(query_idx)} queries but image "
                f"{image} has {num_targets} targets x {num_groups} groups = {len(target_idx)}: "
                "the denoising queries were built from other targets than the loss got"
            )
        matches.append((query_idx, target_idx))
    return matches


def float_tensors(layer: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict of the layer's tensors, floating ones in float32 (lists and dicts dropped)."""
    return {
        key: value.float() if value.is_floating_point() else value
        for key, value in layer.items()
        if isinstance(value, Tensor)
    }


def average_count(count: int, like: Tensor) -> float:
    """A per-process count averaged over distributed workers, at least 1."""
    value = torch.as_tensor([count], dtype=torch.float, device=like.device)
    world_size = 1
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(value)
        world_size = dist.get_world_size()
    return torch.clamp(value / world_size, min=1).item()


def _is_class_agnostic(outputs: Mapping[str, Any]) -> bool:
    return bool(outputs.get("enc_meta", {}).get("class_agnostic", False))


def _class_agnostic(targets: Sequence[dict[str, Tensor]]) -> list[dict[str, Tensor]]:
    return [{**t, "labels": torch.zeros_like(t["labels"])} for t in targets]
