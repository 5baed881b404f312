"""`build_model`: a `ModelDescription` (size, classes, task, image size) turned into a `DFine`, from
the size's row of `dfseg.config.variants.MODEL_VARIANTS` and the task's of `dfseg.config.tasks`."""

from __future__ import annotations

from pydantic import ValidationError

from dfseg.config.tasks import TASKS, Task
from dfseg.config.variants import MODEL_VARIANTS, ModelVariant
from dfseg.nn.dfine_decoder import DFineDecoder
from dfseg.nn.hgnetv2 import HGNetv2
from dfseg.nn.hybrid_encoder import HybridEncoder
from dfseg.nn.mask_head import MaskHead
from dfseg.nn.model import DFine, ModelSpecError, check_image_size
from dfseg.nn.semantic_head import SemanticContext, SemanticHead
from dfseg.nn.semantic_model import DFineSemantic
from dfseg.structures.manifest import DEFAULT_QUERIES, ModelDescription


def describe_model(
    size: str,
    num_classes: int,
    task: str = "detect",
    image_size: tuple[int, int] = (640, 640),
    num_queries: int = DEFAULT_QUERIES,
    semantic_context: SemanticContext = "none",
    decoder_layers: int | None = None,
) -> ModelDescription:
    """A checked `ModelDescription`.

    Raises:
        ModelSpecError: unknown size or task, bad class count, image size or query count, or an
            input too small for the queries.
    """
    if size not in MODEL_VARIANTS:
        sizes = list(MODEL_VARIANTS)
        raise ModelSpecError(f"unknown D-FINE size {size!r}; expected one of {sizes}")
    if task not in TASKS:
        raise ModelSpecError(f"task must be one of {list(TASKS)}, got {task!r}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ModelSpecError(f"num_classes must be a positive integer, got {num_classes!r}")
    check_image_size(image_size)
    if not isinstance(num_queries, int) or not 1 <= num_queries <= DEFAULT_QUERIES:
        raise ModelSpecError(f"num_queries must be 1..{DEFAULT_QUERIES}, got {num_queries!r}")
    height, width = int(image_size[0]), int(image_size[1])
    num_anchors = sum((height // s) * (width // s) for s in MODEL_VARIANTS[size].feat_strides)
    if num_anchors < num_queries and not TASKS[task].semantic:
        raise ModelSpecError(
            f"image_size {(height, width)} gives {num_anchors} anchors for size {size!r}, fewer "
            f"than the {num_queries} queries; use a larger input size or fewer model.num_queries"
        )
    layers = MODEL_VARIANTS[size].num_decoder_layers
    if decoder_layers is not None and not (
        isinstance(decoder_layers, int) and 1 <= decoder_layers <= layers
    ):
        raise ModelSpecError(
            f"decoder_layers must be 1..{layers} (size {size!r} has {layers}), "
            f"got {decoder_layers!r}"
        )
    try:
        return ModelDescription(
            size=size,
            num_classes=num_classes,
            task=task,
            image_size=(height, width),
            num_queries=num_queries,
            decoder_layers=None if decoder_layers == layers else decoder_layers,
            semantic_context=semantic_context,
        )
    except ValidationError as exc:  # unreachable after the checks above, kept as a guard
        raise ModelSpecError(str(exc)) from None


def _build_parts(
    variant: ModelVariant,
    num_classes: int,
    image_size: tuple[int, int],
    num_queries: int,
    decoder_layers: int | None,
) -> tuple[HGNetv2, HybridEncoder, DFineDecoder]:
    backbone, encoder = _build_features(variant, image_size)
    decoder = DFineDecoder(
        num_classes=num_classes,
        num_queries=num_queries,
        hidden_dim=variant.decoder_hidden_dim,
        feat_channels=(variant.encoder_hidden_dim,) * len(variant.return_idx),
        feat_strides=variant.feat_strides,
        num_points=variant.num_points,
        num_layers=variant.num_decoder_layers,
        ffn_dim=variant.decoder_ffn_dim,
        image_size=image_size,
        reg_scale=variant.reg_scale,
        eval_idx=-1 if decoder_layers is None else decoder_layers - 1,
    )
    return backbone, encoder, decoder


def _build_features(
    variant: ModelVariant, image_size: tuple[int, int]
) -> tuple[HGNetv2, HybridEncoder]:
    """The backbone and hybrid encoder every task shares."""
    backbone = HGNetv2(
        variant.backbone,
        variant.use_lab,
        variant.return_idx,
        variant.freeze_stem,
        variant.freeze_norm,
    )
    num_levels = len(variant.return_idx)
    encoder = HybridEncoder(
        in_channels=backbone.out_channels,
        feat_strides=variant.feat_strides,
        hidden_dim=variant.encoder_hidden_dim,
        num_heads=8,
        ffn_dim=variant.encoder_ffn_dim,
        aifi_levels=(num_levels - 1,),
        num_encoder_layers=1,
        expansion=variant.expansion,
        depth_mult=variant.depth_mult,
        image_size=image_size,
    )
    return backbone, encoder


def build_model(
    size: str,
    num_classes: int,
    task: Task | str = "detect",
    image_size: tuple[int, int] = (640, 640),
    num_queries: int = DEFAULT_QUERIES,
    semantic_context: SemanticContext = "none",
    decoder_layers: int | None = None,
) -> DFine | DFineSemantic:
    """Build a randomly initialised D-FINE of a registered size.

    Args:
        size: "n", "s", "m", "l" or "x".
        num_classes: number of classes.
        task: a registered task; tasks with instance masks add the mask head.
        image_size: (height, width) the anchors and position embeddings are cached for;
            multiples of 32. Other sizes still work (generated on the fly).
        num_queries: decoder queries (official: 300). Fewer suit datasets with few objects per
            image; no weight depends on it, so every checkpoint loads whatever the count.
        semantic_context: semantic task: "ppm" adds a pyramid-pooling block to the head.
        decoder_layers: inference (eval mode) returns the N-th decoder layer's predictions and
            skips the rest (None: the last layer's); training still trains every layer.

    Returns:
        A `DFine` in training mode whose state-dict keys match the official checkpoints
        (plus `mask_head.*` for segment), carrying its `ModelDescription`; for the semantic
        task a `DFineSemantic` (backbone and encoder keys as official, `semantic_head.*`).

    Raises:
        ModelSpecError: unknown size or task, bad class count or image size.
    """
    description = describe_model(
        size, num_classes, task, image_size, num_queries, semantic_context, decoder_layers
    )
    variant = MODEL_VARIANTS[description.size]
    if TASKS[description.task].semantic:
        return _build_semantic(description, variant)
    backbone, encoder, decoder = _build_parts(
        variant, num_classes, description.image_size, description.num_queries,
        description.decoder_layers,
    )  # fmt: skip
    mask_head = None
    if TASKS[description.task].instance_masks:
        mask_head = MaskHead(
            query_dim=variant.decoder_hidden_dim,
            encoder_dim=variant.encoder_hidden_dim,
            encoder_strides=variant.feat_strides,
            stage_channels=backbone.stage_channels,
        )
    return DFine(description, backbone, encoder, decoder, mask_head)


def _build_semantic(description: ModelDescription, variant: ModelVariant) -> DFineSemantic:
    backbone, encoder = _build_features(variant, description.image_size)
    head = SemanticHead(
        num_classes=description.num_classes,
        encoder_dim=variant.encoder_hidden_dim,
        encoder_strides=variant.feat_strides,
        stage_channels=backbone.stage_channels,
        context=description.semantic_context,
    )
    return DFineSemantic(description, backbone, encoder, head)


def build_described_model(description: ModelDescription) -> DFine | DFineSemantic:
    """`build_model` from a stored description (a checkpoint's or an export's manifest)."""
    return build_model(
        description.size,
        description.num_classes,
        description.task,
        description.image_size,
        description.num_queries,
        description.semantic_context,
        description.decoder_layers,
    )
