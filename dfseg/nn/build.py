"""`build_model`: turn (size, classes, task, image size) into a `DFine`."""

from __future__ import annotations

from typing import Literal

from dfseg.nn.dfine_decoder import DFineDecoder
from dfseg.nn.hgnetv2 import HGNetv2
from dfseg.nn.hybrid_encoder import HybridEncoder
from dfseg.nn.mask_head import MaskHead
from dfseg.nn.model import TASKS, DFine, ModelSpec, ModelSpecError, check_image_size
from dfseg.nn.variants import SIZE_SPECS, SizeSpec


def _validate(size: str, num_classes: int, task: str, image_size: tuple[int, int]) -> None:
    if size not in SIZE_SPECS:
        raise ModelSpecError(f"unknown D-FINE size {size!r}; expected one of {sorted(SIZE_SPECS)}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ModelSpecError(f"num_classes must be a positive integer, got {num_classes!r}")
    if task not in TASKS:
        raise ModelSpecError(f"task must be one of {TASKS}, got {task!r}")
    check_image_size(image_size)
    strides = SIZE_SPECS[size].feat_strides
    num_anchors = sum((image_size[0] // s) * (image_size[1] // s) for s in strides)
    if num_anchors < 300:
        raise ModelSpecError(
            f"image_size {image_size} gives {num_anchors} anchors for size {size!r}, fewer than "
            "the 300 queries; use a larger input size"
        )


def _build_parts(
    spec: SizeSpec, num_classes: int, image_size: tuple[int, int]
) -> tuple[HGNetv2, HybridEncoder, DFineDecoder]:
    backbone = HGNetv2(
        spec.backbone, spec.use_lab, spec.return_idx, spec.freeze_stem, spec.freeze_norm
    )
    num_levels = len(spec.return_idx)
    encoder = HybridEncoder(
        in_channels=backbone.out_channels,
        feat_strides=spec.feat_strides,
        hidden_dim=spec.encoder_hidden_dim,
        num_heads=8,
        ffn_dim=spec.encoder_ffn_dim,
        aifi_levels=(num_levels - 1,),
        num_encoder_layers=1,
        expansion=spec.expansion,
        depth_mult=spec.depth_mult,
        image_size=image_size,
    )
    decoder = DFineDecoder(
        num_classes=num_classes,
        hidden_dim=spec.decoder_hidden_dim,
        feat_channels=(spec.encoder_hidden_dim,) * num_levels,
        feat_strides=spec.feat_strides,
        num_points=spec.num_points,
        num_layers=spec.num_decoder_layers,
        ffn_dim=spec.decoder_ffn_dim,
        image_size=image_size,
        reg_scale=spec.reg_scale,
    )
    return backbone, encoder, decoder


def build_model(
    size: str,
    num_classes: int,
    task: Literal["detect", "segment"] = "detect",
    image_size: tuple[int, int] = (640, 640),
) -> DFine:
    """Build a randomly initialised D-FINE of a registered size.

    Args:
        size: "n", "s", "m", "l" or "x".
        num_classes: number of classes.
        task: "detect", or "segment" to add the mask head.
        image_size: (height, width) the anchors and position embeddings are cached for;
            multiples of 32. Other sizes still work (generated on the fly).

    Returns:
        A `DFine` in training mode whose state-dict keys match the official checkpoints
        (plus `mask_head.*` for segment).

    Raises:
        ModelSpecError: unknown size or task, bad class count or image size.
    """
    image_size = (int(image_size[0]), int(image_size[1]))
    _validate(size, num_classes, task, image_size)
    spec = SIZE_SPECS[size]
    backbone, encoder, decoder = _build_parts(spec, num_classes, image_size)
    mask_head = None
    if task == "segment":
        mask_head = MaskHead(
            query_dim=spec.decoder_hidden_dim,
            encoder_dim=spec.encoder_hidden_dim,
            encoder_strides=spec.feat_strides,
            stage_channels=backbone.stage_channels,
        )
    model_spec = ModelSpec(size, num_classes, task, image_size)
    return DFine(model_spec, backbone, encoder, decoder, mask_head)
