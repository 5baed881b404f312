"""`DFineSemantic`: D-FINE's backbone and hybrid encoder with a semantic head instead of the
decoder (the semantic task). State-dict keys `backbone.*` and `encoder.*` are the official ones,
so official D-FINE and dfseg detection checkpoints start its features."""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from dfseg.nn.hgnetv2 import HGNetv2
from dfseg.nn.hybrid_encoder import HybridEncoder
from dfseg.nn.model import check_image_size, deploy_modules
from dfseg.nn.semantic_head import SemanticHead
from dfseg.structures.manifest import ModelDescription


class DFineSemantic(nn.Module):
    """Backbone -> hybrid encoder -> semantic head.

    Attributes `backbone`, `encoder`, `semantic_head` are registered in that order, so the
    state-dict keys `backbone.*` and `encoder.*` are D-FINE's official ones.

    Input: images [B, 3, H, W] float RGB in [0, 1] (no mean/std), H and W multiples of 32.
    """

    has_mask_head = False

    def __init__(
        self,
        description: ModelDescription,
        backbone: HGNetv2,
        encoder: HybridEncoder,
        head: SemanticHead,
    ) -> None:
        super().__init__()
        self.description = description
        self.backbone = backbone
        self.encoder = encoder
        self.semantic_head = head
        self.is_deployed = False

    def forward(
        self, images: Tensor, targets: list[dict[str, Tensor]] | None = None
    ) -> dict[str, Tensor]:
        """Class logits at the input size.

        Args:
            images: [B, 3, H, W] RGB in [0, 1].
            targets: unused (the criterion reads them); accepted so that every task's model is
                called alike.

        Returns:
            `semantic_logits` [B, C, H, W]: the head's stride-4 logits bilinearly upsampled to
            the input (the same in training and evaluation).
        """
        stages = self.backbone(images, all_stages=True)
        encoder_levels = self.encoder([stages[i] for i in self.backbone.return_idx])
        logits = self.semantic_head(stages, encoder_levels)  # [B, C, H/4, W/4]
        size = images.shape[-2:]
        upsampled = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return {"semantic_logits": upsampled}  # [B, C, H, W]

    def set_image_size(self, image_size: tuple[int, int]) -> None:
        """Rebuild the encoder's position embeddings for (h, w)."""
        check_image_size(image_size)
        self.encoder.set_image_size(image_size)
        size = (int(image_size[0]), int(image_size[1]))
        self.description = self.description.model_copy(update={"image_size": size})

    def set_dynamic_size(self, enabled: bool) -> None:
        """Trace with the input size as a graph value (see `DFine.set_dynamic_size`)."""
        self.encoder.dynamic_size = enabled

    def deploy(self, fuse_backbone: bool = False, channels_last: bool = False) -> DFineSemantic:
        """Prepare for inference as `DFine.deploy` does: eval mode, conv+BN folded; outputs
        unchanged up to float rounding, the model can no longer be trained.

        Args:
            fuse_backbone: also fold the backbone's batch norms (state-dict keys unchanged).
            channels_last: store conv weights NHWC (faster CPU kernels, same values).

        Returns:
            self.
        """
        deploy_modules(self, fuse_backbone, channels_last)
        self.is_deployed = True
        return self
