"""D-FINE decoder (official `DFINETransformer`): query selection from encoder anchors, optional
contrastive denoising queries, and layer-by-layer Fine-grained Distribution Refinement (FDR).

Optional training-only query groups (Group DETR, as in LW-DETR / RF-DETR): each extra group selects
its own top-k queries with its own two-stage heads, is refined by the same layers without seeing the
other groups, and is matched one-to-one on its own, so every object supervises G queries per step.
Inference uses the first group only; the extra heads never reach best.pt or an export.

`forward` returns a `DecoderResult` with per-layer tensors; `dfseg.nn.outputs` turns it into the
official output dicts. Parameter names match the official checkpoints (`decoder.*`).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn as nn
from torch import Tensor

from dfseg.nn.anchors import feature_grid_sizes, generate_anchors
from dfseg.nn.conv import ProjectionConvNorm
from dfseg.nn.decoder_stack import DecoderLayerStack
from dfseg.nn.deformable_attention import split_value_levels
from dfseg.nn.denoising import DenoisingQueries, build_denoising_queries
from dfseg.nn.mlp import MLP
from dfseg.ops.boxes import inverse_sigmoid
from dfseg.ops.fdr import distance_to_box_cxcywh, distribution_integral, weighting_function

QUERY_GROUP_PREFIX = "decoder.query_group_heads."
"""State-dict prefix (in a `DFine`) of the extra query groups' heads: training-only weights."""


def saved_query_groups(state: Mapping[str, object]) -> int:
    """The query groups a saved model state (a last.pt's "model") was trained with."""
    heads = {
        key[len(QUERY_GROUP_PREFIX) :].split(".", 1)[0]
        for key in state
        if key.startswith(QUERY_GROUP_PREFIX)
    }
    return 1 + len(heads)


def _prior_bias(prior: float) -> float:
    return -math.log((1 - prior) / prior)


@dataclass
class QuerySelection:
    """Top-k encoder proposals. content [B, K, C]; boxes_logit [B, K, 4]; topk_ind [B, K];
    enc_logits [B, K, classes] and enc_boxes [B, K, 4] (normalised cxcywh) in training only."""

    content: Tensor
    boxes_logit: Tensor
    topk_ind: Tensor
    enc_logits: Tensor | None
    enc_boxes: Tensor | None


class QueryGroupHeads(nn.Module):
    """Two-stage heads of one extra query group, named and initialised as the decoder's own."""

    def __init__(self, hidden_dim: int, num_classes: int) -> None:
        super().__init__()
        self.enc_output = nn.Sequential(
            OrderedDict(
                [("proj", nn.Linear(hidden_dim, hidden_dim)), ("norm", nn.LayerNorm(hidden_dim))]
            )
        )
        self.enc_score_head = nn.Linear(hidden_dim, num_classes)
        self.enc_bbox_head = MLP(hidden_dim, hidden_dim, 4, 3)
        nn.init.constant_(self.enc_score_head.bias, _prior_bias(0.01))
        nn.init.zeros_(self.enc_bbox_head.output_layer.weight)
        nn.init.zeros_(self.enc_bbox_head.output_layer.bias)
        nn.init.xavier_uniform_(cast(nn.Linear, self.enc_output[0]).weight)


def query_group_mask(
    denoising_mask: Tensor | None,
    num_denoising: int,
    num_queries: int,
    groups: int,
    device: torch.device,
) -> Tensor:
    """[N_dn + G*Q]^2 bool, True where attention is forbidden: groups never see each other, the
    denoising queries keep their own mask and see the first group only (as without groups)."""
    total = num_denoising + groups * num_queries
    mask = torch.zeros([total, total], dtype=torch.bool, device=device)
    group = torch.arange(groups * num_queries, device=device) // num_queries
    mask[num_denoising:, num_denoising:] = group[:, None] != group[None, :]
    if num_denoising:
        assert denoising_mask is not None
        mask[: num_denoising + num_queries, : num_denoising + num_queries] = denoising_mask
        mask[num_denoising:, :num_denoising] = True
        mask[:num_denoising, num_denoising + num_queries :] = True
    return mask


@dataclass
class DecoderResult:
    """Per-layer decoder outputs stacked on dim 0: every layer in training, the eval layer in eval.

    Denoising queries, when present, come first along the query dim (split by dn_meta).
    logits [L, B, Q, classes] pre-sigmoid; boxes [L, B, Q, 4] normalised cxcywh; corners
    [L, B, Q, 4 * (reg_max + 1)]; refs [L, B, Q, 4] initial reference boxes; features
    [L, B, Q, C] query features; pre_* [B, Q, ...] from layer 0 (training); enc_* [B, K, ...]
    (training); topk_ind [B, K]. With query groups (training), the G groups of K queries follow
    each other after the denoising ones and `group_enc` holds the extra groups' (enc_logits,
    enc_boxes).
    """

    logits: Tensor
    boxes: Tensor
    corners: Tensor
    refs: Tensor
    features: Tensor
    topk_ind: Tensor
    pre_logits: Tensor | None = None
    pre_boxes: Tensor | None = None
    enc_logits: Tensor | None = None
    enc_boxes: Tensor | None = None
    dn_meta: dict[str, Any] | None = None
    group_enc: list[tuple[Tensor, Tensor]] | None = None


class DFineDecoder(nn.Module):
    """D-FINE transformer decoder.

    Args:
        num_classes: C.
        hidden_dim: query width.
        feat_channels: channels of the encoder levels (projected to hidden_dim when different).
        feat_strides: strides of the encoder levels.
        num_points: deformable sampling points per level.
        num_layers: decoder layers.
        ffn_dim: decoder feed-forward width.
        image_size: (height, width) the anchors are cached for.
        num_heads: attention heads.
        num_queries: selected queries Q.
        num_denoising: denoising query budget in training (0 disables).
        label_noise_ratio: denoising label noise.
        box_noise_scale: denoising box noise.
        reg_max: FDR bins per edge minus one.
        reg_scale: FDR curvature (stored as an int64 parameter, like the official checkpoints).
        eval_idx: layer whose outputs are returned in eval (-1: last).
    """

    anchors: Tensor
    valid_mask: Tensor
    project: Tensor

    def __init__(
        self,
        num_classes: int,
        hidden_dim: int,
        feat_channels: tuple[int, ...],
        feat_strides: tuple[int, ...],
        num_points: tuple[int, ...],
        num_layers: int,
        ffn_dim: int,
        image_size: tuple[int, int],
        num_heads: int = 8,
        num_queries: int = 300,
        num_denoising: int = 100,
        label_noise_ratio: float = 0.5,
        box_noise_scale: float = 1.0,
        reg_max: int = 32,
        reg_scale: int = 4,
        eval_idx: int = -1,
    ) -> None:
        super().__init__()
        if len(feat_channels) != len(feat_strides) or len(num_points) != len(feat_strides):
            raise ValueError("feat_channels, feat_strides and num_points need one entry per level")
        self.num_classes = num_classes
        self.hidden_dim = hidden_dim
        self.feat_strides = tuple(feat_strides)
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.num_queries = num_queries
        self.num_denoising = num_denoising
        self.label_noise_ratio = label_noise_ratio
        self.box_noise_scale = box_noise_scale
        self.reg_max = reg_max
        self.eval_idx = eval_idx if eval_idx >= 0 else num_layers + eval_idx
        self.is_deployed = False
        # Traced for an export with a dynamic input size: anchors come from the traced level
        # sizes (graph values) instead of the cached buffer (see `DFine.set_dynamic_size`).
        self.dynamic_size = False

        self.input_proj = nn.ModuleList(
            nn.Identity() if c == hidden_dim else ProjectionConvNorm(c, hidden_dim)
            for c in feat_channels
        )
        self.up = nn.Parameter(torch.tensor([0.5]), requires_grad=False)
        self.reg_scale = nn.Parameter(torch.tensor([int(reg_scale)]), requires_grad=False)
        self.decoder = DecoderLayerStack(
            self.up, self.reg_scale, num_layers, hidden_dim, num_heads, ffn_dim, num_points, reg_max
        )
        self.denoising_class_embed = nn.Embedding(
            num_classes + 1, hidden_dim, padding_idx=num_classes
        )
        self.query_pos_head = MLP(4, 2 * hidden_dim, hidden_dim, 2)
        self.enc_output = nn.Sequential(
            OrderedDict(
                [("proj", nn.Linear(hidden_dim, hidden_dim)), ("norm", nn.LayerNorm(hidden_dim))]
            )
        )
        self.enc_score_head = nn.Linear(hidden_dim, num_classes)
        self.enc_bbox_head = MLP(hidden_dim, hidden_dim, 4, 3)
        self.dec_score_head = nn.ModuleList(
            nn.Linear(hidden_dim, num_classes) for _ in range(num_layers)
        )
        self.pre_bbox_head = MLP(hidden_dim, hidden_dim, 4, 3)
        self.dec_bbox_head = nn.ModuleList(
            MLP(hidden_dim, hidden_dim, 4 * (reg_max + 1), 3) for _ in range(num_layers)
        )
        self.query_group_heads = nn.ModuleList()  # no state-dict keys until set_query_groups
        self.set_image_size(image_size)
        self.reset_parameters()

    @property
    def query_groups(self) -> int:
        """Query groups in training (1: D-FINE's single set)."""
        return 1 + len(self.query_group_heads)

    def set_query_groups(self, groups: int) -> None:
        """Train with `groups` query groups (Group DETR); 1 removes the extra groups' heads. The
        extra heads start fresh; eval outputs never depend on them."""
        if groups < 1:
            raise ValueError(f"query groups must be >= 1, got {groups}")
        device = self.up.device
        self.query_group_heads = nn.ModuleList(
            QueryGroupHeads(self.hidden_dim, self.num_classes).to(device) for _ in range(groups - 1)
        )

    def reset_parameters(self) -> None:
        """Official initialisation: class biases at prior 0.01, box regressors start at zero."""
        class_bias = _prior_bias(0.01)
        nn.init.constant_(self.enc_score_head.bias, class_bias)
        for head in (self.enc_bbox_head, self.pre_bbox_head, *self.dec_bbox_head):
            assert isinstance(head, MLP)
            nn.init.zeros_(head.output_layer.weight)
            nn.init.zeros_(head.output_layer.bias)
        for score_head in self.dec_score_head:
            assert isinstance(score_head, nn.Linear)
            nn.init.constant_(score_head.bias, class_bias)
        nn.init.xavier_uniform_(cast(nn.Linear, self.enc_output[0]).weight)
        for layer in self.query_pos_head.layers:
            nn.init.xavier_uniform_(cast(nn.Linear, layer).weight)
        for projection in self.input_proj:
            if isinstance(projection, ProjectionConvNorm):
                nn.init.xavier_uniform_(projection.conv.weight)
        with torch.no_grad():
            nn.init.normal_(self.denoising_class_embed.weight[:-1])

    def reset_class_heads(self) -> None:
        """Re-initialise every tensor whose shape depends on the number of classes."""
        for head in (self.enc_score_head, *self.dec_score_head):
            if isinstance(head, nn.Linear):
                head.reset_parameters()
                nn.init.constant_(head.bias, _prior_bias(0.01))
        with torch.no_grad():
            nn.init.normal_(self.denoising_class_embed.weight[:-1])
            self.denoising_class_embed.weight[-1].zero_()

    def set_image_size(self, image_size: tuple[int, int]) -> None:
        """Rebuild the cached anchors and valid mask for (height, width) `image_size`."""
        self.cached_shapes = feature_grid_sizes(image_size, self.feat_strides)
        num_anchors = sum(h * w for h, w in self.cached_shapes)
        if num_anchors < self.num_queries:
            raise ValueError(
                f"image size {image_size} gives {num_anchors} anchors, fewer than the "
                f"{self.num_queries} queries; use a larger input size"
            )
        device = self.up.device
        anchors, valid_mask = generate_anchors(self.cached_shapes, device=device)
        self.register_buffer("anchors", anchors)
        self.register_buffer("valid_mask", valid_mask)

    # ----------------------------------------------------------------------------------------
    @property
    def _traced_size(self) -> bool:
        """Tracing an export whose input size stays a graph value."""
        return self.dynamic_size and torch.jit.is_tracing()

    def _flatten_levels(self, features: list[Tensor]) -> tuple[Tensor, list[tuple[Any, Any]]]:
        projected = [proj(feature) for proj, feature in zip(self.input_proj, features, strict=True)]
        if self._traced_size:  # level sizes stay graph values
            shapes: list[tuple[Any, Any]] = [(p.shape[2], p.shape[3]) for p in projected]
        else:
            shapes = [(int(p.shape[2]), int(p.shape[3])) for p in projected]
        memory = torch.cat([p.flatten(2).permute(0, 2, 1) for p in projected], dim=1)  # [B, L, C]
        return memory, shapes

    def _anchors_for(
        self, shapes: list[tuple[Any, Any]], device: torch.device
    ) -> tuple[Tensor, Tensor]:
        if not self.training and not self._traced_size and shapes == self.cached_shapes:
            return self.anchors, self.valid_mask  # the cached fast path
        return generate_anchors(shapes, device=device)

    def _select_queries(
        self,
        memory: Tensor,
        anchors: Tensor,
        valid_mask: Tensor,
        heads: QueryGroupHeads | None = None,
    ) -> QuerySelection:
        """Top-k selection with the decoder's heads, or with an extra query group's `heads`."""
        owner: Any = self if heads is None else heads
        memory = valid_mask.to(memory.dtype) * memory
        output_memory = owner.enc_output(memory)  # [B, L, C]
        enc_logits = owner.enc_score_head(output_memory)  # [B, L, classes]
        topk_ind = torch.topk(enc_logits.max(-1).values, self.num_queries, dim=-1).indices  # [B, K]
        # Indexing the batch-free [L, 4] anchors keeps the batch size out of exported graphs.
        topk_anchors = anchors[0][topk_ind].to(memory.dtype)  # [B, K, 4]
        topk_memory = output_memory.gather(
            1, topk_ind.unsqueeze(-1).expand(-1, -1, output_memory.shape[-1])
        )  # [B, K, C]
        boxes_logit = owner.enc_bbox_head(topk_memory) + topk_anchors
        enc_topk_logits = enc_boxes = None
        if self.training:
            enc_topk_logits = enc_logits.gather(
                1, topk_ind.unsqueeze(-1).expand(-1, -1, enc_logits.shape[-1])
            )
            enc_boxes = torch.sigmoid(boxes_logit)
        return QuerySelection(
            topk_memory.detach(), boxes_logit.detach(), topk_ind, enc_topk_logits, enc_boxes
        )

    def bin_values(self) -> Tensor:
        """W(n), [reg_max + 1]: cached after `deploy()`, else computed from `up`/`reg_scale`."""
        if self.is_deployed:
            return self.project
        return weighting_function(self.reg_max, self.up, self.reg_scale)

    def _refine(
        self,
        content: Tensor,
        boxes_logit: Tensor,
        memory: Tensor,
        shapes: list[tuple[int, int]],
        attn_mask: Tensor | None,
    ) -> dict[str, Any]:
        """Run the layers; returns lists of per-layer tensors plus layer-0 `pre_*` outputs."""
        value_levels = split_value_levels(memory, shapes, self.num_heads)
        bin_values = self.bin_values()
        last = self.num_layers - 1 if self.training else self.eval_idx
        ref_boxes = torch.sigmoid(boxes_logit)
        output = content
        previous_output: Tensor | None = None
        previous_corners: Tensor | None = None
        collected: dict[str, Any] = {
            k: [] for k in ("logits", "boxes", "corners", "refs", "features")
        }
        for index in range(last + 1):
            query_pos = self.query_pos_head(ref_boxes).clamp(min=-10, max=10)
            output = self.decoder.layers[index](
                output, ref_boxes.unsqueeze(2), value_levels, query_pos, attn_mask
            )
            if index == 0:
                pre_boxes = torch.sigmoid(self.pre_bbox_head(output) + inverse_sigmoid(ref_boxes))
                if self.training:
                    collected["pre_logits"] = self.dec_score_head[0](output)
                    collected["pre_boxes"] = pre_boxes
                initial_refs = pre_boxes.detach()
                corners = self.dec_bbox_head[0](output)
            else:
                assert previous_output is not None and previous_corners is not None
                corners = self.dec_bbox_head[index](output + previous_output) + previous_corners
            boxes = distance_to_box_cxcywh(
                initial_refs, distribution_integral(corners, bin_values), self.reg_scale
            )
            if self.training or index == self.eval_idx:
                logits = self.decoder.lqe_layers[index](self.dec_score_head[index](output), corners)
                collected["logits"].append(logits)
                collected["boxes"].append(boxes)
                collected["corners"].append(corners)
                collected["refs"].append(initial_refs)
                collected["features"].append(output)
            previous_corners = corners
            previous_output = output.detach()
            ref_boxes = boxes.detach()
        return collected

    def forward(
        self, features: list[Tensor], targets: list[dict[str, Tensor]] | None = None
    ) -> DecoderResult:
        """Select queries from the encoder levels and refine them through the layers.

        Args:
            features: encoder outputs [B, C_l, H_l, W_l], finest first.
            targets: training targets (`labels` [N] int64, `boxes` [N, 4] normalised cxcywh),
                used for the denoising queries; ignored in eval.

        Returns:
            A `DecoderResult`.
        """
        if self.training and self.is_deployed:
            raise RuntimeError(
                "a deployed model cannot be trained; rebuild it and load the weights"
            )
        memory, shapes = self._flatten_levels(features)
        if memory.shape[1] < self.num_queries:
            raise ValueError(
                f"input gives {memory.shape[1]} anchors, fewer than {self.num_queries} queries; "
                "use a larger input size"
            )
        denoising: DenoisingQueries | None = None
        if self.training and self.num_denoising > 0 and targets is not None:
            denoising = build_denoising_queries(
                targets, self.num_classes, self.num_queries, self.denoising_class_embed,
                self.num_denoising, self.label_noise_ratio, self.box_noise_scale,
            )  # fmt: skip
        anchors, valid_mask = self._anchors_for(shapes, memory.device)
        selection = self._select_queries(memory, anchors, valid_mask)
        content, boxes_logit, attn_mask = selection.content, selection.boxes_logit, None
        groups = [
            self._select_queries(memory, anchors, valid_mask, cast(QueryGroupHeads, heads))
            for heads in (self.query_group_heads if self.training else ())
        ]
        if groups:
            content = torch.cat([content, *(g.content for g in groups)], dim=1)
            boxes_logit = torch.cat([boxes_logit, *(g.boxes_logit for g in groups)], dim=1)
        num_denoising = 0
        if denoising is not None and denoising.content is not None:
            assert denoising.boxes_logit is not None
            content = torch.cat([denoising.content, content], dim=1)
            boxes_logit = torch.cat([denoising.boxes_logit, boxes_logit], dim=1)
            attn_mask = denoising.attn_mask
            num_denoising = denoising.content.shape[1]
        if groups:
            attn_mask = query_group_mask(
                attn_mask, num_denoising, self.num_queries, 1 + len(groups), content.device
            )
        collected = self._refine(content, boxes_logit, memory, shapes, attn_mask)
        return DecoderResult(
            logits=torch.stack(collected["logits"]),
            boxes=torch.stack(collected["boxes"]),
            corners=torch.stack(collected["corners"]),
            refs=torch.stack(collected["refs"]),
            features=torch.stack(collected["features"]),
            topk_ind=selection.topk_ind,
            pre_logits=collected.get("pre_logits"),
            pre_boxes=collected.get("pre_boxes"),
            enc_logits=selection.enc_logits,
            enc_boxes=selection.enc_boxes,
            dn_meta=denoising.meta if denoising is not None else None,
            group_enc=[(g.enc_logits, g.enc_boxes) for g in groups] or None,  # type: ignore[misc]
        )

    def deploy(self) -> None:
        """Cache W(n) and drop what eval never uses: layers after eval_idx, score heads and LQEs
        before it, box heads after it. Eval outputs are unchanged."""
        if self.is_deployed:
            return
        keep = self.eval_idx
        self.query_group_heads = nn.ModuleList()
        self.register_buffer("project", self.bin_values().detach().clone(), persistent=False)
        self.decoder.layers = self.decoder.layers[: keep + 1]
        identity = nn.Identity()
        self.decoder.lqe_layers = nn.ModuleList([identity] * keep + [self.decoder.lqe_layers[keep]])
        self.dec_score_head = nn.ModuleList([identity] * keep + [self.dec_score_head[keep]])
        self.dec_bbox_head = nn.ModuleList(
            [head if i <= keep else nn.Identity() for i, head in enumerate(self.dec_bbox_head)]
        )
        self.is_deployed = True
