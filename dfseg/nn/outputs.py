"""Assemble the official D-FINE output dicts from a `DecoderResult`.

Eval: `pred_logits`, `pred_boxes` (plus `pred_mask_embeds`, `mask_features` for segmentation).
Train: the full official dict (final, aux, pre, encoder, denoising outputs and metadata), so a
criterion written against the official model works unchanged; segmentation adds
`pred_mask_embeds` to the final, every aux and every denoising dict, and `mask_features`.
A model trained with query groups adds `group_outputs`: one dict per extra group, with the same
regular keys (final, aux, pre, encoder) and no denoising.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from dfseg.nn.dfine_decoder import DecoderResult


def eval_outputs(
    result: DecoderResult,
    mask_embeds: Tensor | None = None,
    mask_features: Tensor | None = None,
    include_topk_ind: bool = False,
    include_corners: bool = False,
) -> dict[str, Tensor]:
    """Eval dict: pred_logits [B, Q, C], pred_boxes [B, Q, 4] normalised cxcywh; with a mask
    head also pred_mask_embeds [B, Q, D] and mask_features [B, D, H/4, W/4]; optionally
    enc_topk_ind [B, Q] (the anchor index each query came from) and pred_corners
    [B, Q, 4 * (reg_max + 1)] (the FDR corner logits, for distillation)."""
    outputs = {"pred_logits": result.logits[-1], "pred_boxes": result.boxes[-1]}
    if include_corners:
        outputs["pred_corners"] = result.corners[-1]
    if mask_embeds is not None and mask_features is not None:
        outputs["pred_mask_embeds"] = mask_embeds[-1]
        outputs["mask_features"] = mask_features
    if include_topk_ind:
        outputs["enc_topk_ind"] = result.topk_ind
    return outputs


def _layer_dicts(
    logits: Tensor, boxes: Tensor, corners: Tensor, refs: Tensor, mask_embeds: Tensor | None
) -> list[dict[str, Tensor]]:
    """One dict per layer, each carrying the last layer's corners/logits as the teacher."""
    layers = []
    for index in range(logits.shape[0]):
        entry = {
            "pred_logits": logits[index],
            "pred_boxes": boxes[index],
            "pred_corners": corners[index],
            "ref_points": refs[index],
            "teacher_corners": corners[-1],
            "teacher_logits": logits[-1],
        }
        if mask_embeds is not None:
            entry["pred_mask_embeds"] = mask_embeds[index]
        layers.append(entry)
    return layers


def _split_queries(tensor: Tensor | None, split: list[int], dim: int) -> tuple[Any, Any]:
    if tensor is None:
        return None, None
    denoising, matching = torch.split(tensor, split, dim=dim)
    return denoising, matching


def _matching_dict(
    stacked: dict[str, Any],
    pre: dict[str, Any],
    enc: tuple[Tensor | None, Tensor | None],
    up: Tensor,
    reg_scale: Tensor,
    mask_features: Tensor | None,
) -> dict[str, Any]:
    """The official dict of one set of matching queries (no denoising keys)."""
    layers = _layer_dicts(
        stacked["logits"],
        stacked["boxes"],
        stacked["corners"],
        stacked["refs"],
        stacked["mask_embeds"],
    )
    outputs: dict[str, Any] = {
        key: layers[-1][key] for key in ("pred_logits", "pred_boxes", "pred_corners", "ref_points")
    }
    outputs["up"] = up
    outputs["reg_scale"] = reg_scale
    outputs["aux_outputs"] = layers[:-1]
    outputs["enc_aux_outputs"] = [{"pred_logits": enc[0], "pred_boxes": enc[1]}]
    outputs["pre_outputs"] = pre
    outputs["enc_meta"] = {"class_agnostic": False}
    if stacked["mask_embeds"] is not None:
        outputs["pred_mask_embeds"] = layers[-1]["pred_mask_embeds"]
        outputs["mask_features"] = mask_features
    return outputs


def _per_group(tensors: dict[str, Tensor | None], groups: int, dim: int) -> list[dict[str, Any]]:
    """`tensors` cut into `groups` equal query groups along `dim` (None stays None)."""
    parts = {
        key: [None] * groups if value is None else torch.chunk(value, groups, dim=dim)
        for key, value in tensors.items()
    }
    return [{key: chunks[g] for key, chunks in parts.items()} for g in range(groups)]


def train_outputs(
    result: DecoderResult,
    up: Tensor,
    reg_scale: Tensor,
    mask_embeds: Tensor | None = None,
    mask_features: Tensor | None = None,
) -> dict[str, Any]:
    """The official training dict (see module docstring); tensors keep their graphs."""
    assert result.pre_logits is not None and result.enc_logits is not None
    stacked: dict[str, Any] = {
        "logits": result.logits,
        "boxes": result.boxes,
        "corners": result.corners,
        "refs": result.refs,
        "mask_embeds": mask_embeds,
    }
    pre = {"pred_logits": result.pre_logits, "pred_boxes": result.pre_boxes}
    denoising: dict[str, Any] = {}
    dn_pre: dict[str, Any] = {}
    if result.dn_meta is not None:
        num_dn = result.dn_meta["dn_num_split"][0]
        split = [num_dn, result.logits.shape[2] - num_dn]
        for key, value in stacked.items():
            denoising[key], stacked[key] = _split_queries(value, split, dim=2)
        for key, value in pre.items():
            dn_pre[key], pre[key] = _split_queries(value, split, dim=1)

    encoders = [(result.enc_logits, result.enc_boxes), *(result.group_enc or [])]
    groups = len(encoders)
    dicts = [
        _matching_dict(s, p, e, up, reg_scale, mask_features)
        for s, p, e in zip(
            _per_group(stacked, groups, dim=2), _per_group(pre, groups, dim=1), encoders,
            strict=True,
        )
    ]  # fmt: skip
    outputs = dicts[0]
    if result.dn_meta is not None:
        outputs["dn_outputs"] = _layer_dicts(
            denoising["logits"], denoising["boxes"], denoising["corners"], denoising["refs"],
            denoising["mask_embeds"],
        )  # fmt: skip
        outputs["dn_pre_outputs"] = dn_pre
        outputs["dn_meta"] = result.dn_meta
    if groups > 1:
        outputs["group_outputs"] = dicts[1:]
    return outputs
