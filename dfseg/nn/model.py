"""The D-FINE model: backbone -> hybrid encoder -> decoder, plus an optional mask head; it carries
its `ModelDescription` (what `build_model` built it from)."""

from __future__ import annotations

from typing import Any, get_args

import torch
import torch.nn as nn
from torch import Tensor

from dfseg.config.choices import AttentionSum
from dfseg.errors import DfsegError
from dfseg.nn.deformable_attention import MSDeformableAttention
from dfseg.nn.dfine_decoder import DFineDecoder
from dfseg.nn.hgnetv2 import ConvBNAct, HGNetv2
from dfseg.nn.hybrid_encoder import HybridEncoder
from dfseg.nn.mask_head import MaskHead
from dfseg.nn.outputs import eval_outputs, train_outputs
from dfseg.structures.manifest import ModelDescription

ATTENTION_SUMS = get_args(AttentionSum)


class ModelSpecError(DfsegError, ValueError):
    """A model description (size, classes, task, image size) that cannot be built."""


class DFine(nn.Module):
    """D-FINE detector with an optional instance-segmentation head.

    Attribute names (and so state-dict keys) follow the official implementation: `backbone`,
    `decoder`, `encoder` registered in that order; `mask_head` exists only for task "segment".

    Input: images [B, 3, H, W] float RGB in [0, 1] (no mean/std), H and W multiples of 32.
    """

    def __init__(
        self,
        description: ModelDescription,
        backbone: HGNetv2,
        encoder: HybridEncoder,
        decoder: DFineDecoder,
        mask_head: MaskHead | None = None,
    ) -> None:
        super().__init__()
        self.description = description
        self.backbone = backbone
        self.decoder = decoder
        self.encoder = encoder
        if mask_head is not None:
            self.mask_head = mask_head
        self.has_mask_head = mask_head is not None
        self.is_deployed = False

    def forward(
        self,
        images: Tensor,
        targets: list[dict[str, Tensor]] | None = None,
        return_enc_topk_ind: bool = False,
        return_corners: bool = False,
    ) -> dict[str, Any]:
        """Run the model.

        Args:
            images: [B, 3, H, W] RGB in [0, 1].
            targets: training only; per image `labels` [N] int64 and `boxes` [N, 4] normalised
                cxcywh (extra keys such as `masks` are ignored). Feeds the denoising queries.
            return_enc_topk_ind: eval only; add `enc_topk_ind` [B, Q], the anchor index of each
                query (for aligning queries across implementations).
            return_corners: eval only; add `pred_corners` (a distillation teacher's FDR
                distributions).

        Returns:
            Eval: `pred_logits` [B, Q, C] pre-sigmoid, `pred_boxes` [B, Q, 4] normalised cxcywh,
            and for segment `pred_mask_embeds` [B, Q, D], `mask_features` [B, D, H/4, W/4].
            Train: the official D-FINE training dict (see `dfseg.nn.outputs`).
        """
        stages = self.backbone(images, all_stages=True)
        encoder_levels = self.encoder([stages[i] for i in self.backbone.return_idx])
        result = self.decoder(encoder_levels, targets)
        mask_embeds = mask_features = None
        if self.has_mask_head:
            mask_features = self.mask_head(stages, encoder_levels)
            mask_embeds = self.mask_head.embed_queries(result.features)  # [L, B, Q, D]
        if self.training:
            return train_outputs(
                result, self.decoder.up, self.decoder.reg_scale, mask_embeds, mask_features
            )
        return eval_outputs(result, mask_embeds, mask_features, return_enc_topk_ind, return_corners)

    def set_image_size(self, image_size: tuple[int, int]) -> None:
        """Rebuild the size-dependent buffers (anchors, position embeddings) for (h, w)."""
        check_image_size(image_size)
        self.encoder.set_image_size(image_size)
        self.decoder.set_image_size(image_size)
        size = (int(image_size[0]), int(image_size[1]))
        self.description = self.description.model_copy(update={"image_size": size})

    def limit_decoder(
        self, num_queries: int | None = None, decoder_layers: int | None = None
    ) -> None:
        """Infer with fewer queries or decoder layers than trained: a speed/accuracy option for
        export. The decoder keeps the `num_queries` best-scored encoder anchors and returns the
        `decoder_layers`-th layer's predictions (every layer of D-FINE predicts; the later ones
        refine). No weight changes; call before `deploy()`, which drops the unused layers.

        Raises:
            ModelSpecError: a count outside 1..(the model's current one), or a deployed model.
        """
        if self.is_deployed:
            raise ModelSpecError("limit_decoder() must be called before deploy()")
        queries = self.decoder.num_queries if num_queries is None else num_queries
        layers = self.decoder.eval_idx + 1 if decoder_layers is None else decoder_layers
        if not 1 <= queries <= self.decoder.num_queries:
            raise ModelSpecError(
                f"num_queries must be 1..{self.decoder.num_queries} (the model's), got {queries}"
            )
        if not 1 <= layers <= self.decoder.eval_idx + 1:
            raise ModelSpecError(
                f"decoder_layers must be 1..{self.decoder.eval_idx + 1} (the model's), got {layers}"
            )
        self.decoder.num_queries = queries
        self.decoder.eval_idx = layers - 1
        self.description = self.description.model_copy(
            update={
                "num_queries": queries,
                "decoder_layers": None if layers == self.decoder.num_layers else layers,
            }
        )

    def set_dynamic_size(self, enabled: bool) -> None:
        """Trace with the input size as a graph value (exports with a dynamic height and width):
        anchors and position embeddings are then computed in the graph from the input's shape
        instead of being baked in as constants. Eager results are the same either way."""
        self.encoder.dynamic_size = enabled
        self.decoder.dynamic_size = enabled

    def set_attention_sum(self, attention_sum: str) -> None:
        """How deformable attention sums its samples: "concat" (every level's samples
        concatenated, then weighted and summed, as trained) or "levels" (weighted and summed per
        level, no concatenation). The values are the same up to float rounding; an export picks
        the one its runtime runs faster (`export.attention_sum`)."""
        if attention_sum not in ATTENTION_SUMS:
            raise ModelSpecError(
                f"attention_sum must be one of {list(ATTENTION_SUMS)}, got {attention_sum!r}"
            )
        for module in self.decoder.modules():
            if isinstance(module, MSDeformableAttention):
                module.attention_sum = attention_sum

    def deploy(self, fuse_backbone: bool = False, channels_last: bool = False) -> DFine:
        """Prepare for inference, as the official `deploy()`: eval mode, conv+BN and RepVGG
        branches folded, W(n) cached, decoder parts eval never uses dropped. Outputs are
        unchanged up to float rounding; the model can no longer be trained.

        The two options speed up CPU inference further (see benchmarks/bench_model_latency.py)
        at the price of different float rounding. They are off by default so that a deployed
        model reproduces the official deployed one within the reference tolerances (its
        randomly perturbed weights amplify 1e-7 rounding changes into 1e-3 logit changes;
        trained weights do not).

        Args:
            fuse_backbone: also fold the backbone's batch norms (state-dict keys unchanged).
            channels_last: store conv weights NHWC; CPU convolutions then pick faster kernels
                whatever the input layout (values and state-dict keys unchanged).

        Returns:
            self.
        """
        deploy_modules(self, fuse_backbone, channels_last)
        self.is_deployed = True
        return self


def deploy_modules(model: nn.Module, fuse_backbone: bool, channels_last: bool) -> None:
    """Eval mode and every submodule's own `deploy()` (conv+BN folding, cached constants), the
    backbone's norms folded too with `fuse_backbone`, NHWC weights with `channels_last`."""
    model.eval()
    for module in list(model.modules()):
        deploy = getattr(module, "deploy", None)
        if module is not model and callable(deploy):
            deploy()
        if fuse_backbone and isinstance(module, ConvBNAct):
            module.fold_norm()
    if channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def check_image_size(image_size: tuple[int, int]) -> None:
    """Raise ModelSpecError unless image_size is (height, width), both positive multiples of 32."""
    if len(image_size) != 2 or any(int(v) <= 0 or int(v) % 32 for v in image_size):
        raise ModelSpecError(
            "image_size must be (height, width) with both positive multiples of 32, "
            f"got {image_size!r}"
        )
