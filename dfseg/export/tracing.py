"""Graph-friendly replacements used while tracing a model for export.

Eager PyTorch on CPU and inference engines reward different formulations of the same function.
While a graph is traced, these helpers swap the eager-CPU tricks of `dfseg.nn` for the plain
operators that ONNX Runtime and OpenVINO implement best. Every swap computes exactly the same
values (max is exact), and the parity check after export verifies the artifact anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from dfseg.export.errors import ExportError


def _max_pool_2x2_stride1(x: Tensor) -> Tensor:
    """One MaxPool node instead of four Slices and three Max nodes: on OpenVINO the sliced form
    also forces a reference (slow) Concat in the stem, ~5% of size N."""
    return F.max_pool2d(x, kernel_size=2, stride=1)


# (module, attribute, replacement) applied while tracing.
# A Gather-based bilinear sampler in place of GridSample was tried and measured 30-45% slower
# end to end on OpenVINO (CPU), so deformable attention keeps GridSample.
REPLACEMENTS: tuple[tuple[str, str, Callable[..., Any]], ...] = (
    ("dfseg.nn.hgnetv2", "max_pool_2x2_stride1", _max_pool_2x2_stride1),
)


@contextmanager
def export_friendly_ops() -> Iterator[None]:
    """Apply `REPLACEMENTS` for the duration of the block (restored afterwards).

    Raises:
        ExportError: a replaced function no longer exists (the model code changed: update
            `REPLACEMENTS`).
    """
    import importlib

    originals = []
    try:
        for module_name, attribute, replacement in REPLACEMENTS:
            module = importlib.import_module(module_name)
            if not hasattr(module, attribute):
                raise ExportError(
                    f"{module_name}.{attribute} is gone; update dfseg.export.tracing.REPLACEMENTS"
                )
            originals.append((module, attribute, getattr(module, attribute)))
            setattr(module, attribute, replacement)
        yield
    finally:
        for module, attribute, original in reversed(originals):
            setattr(module, attribute, original)


# ---------------------------------------------------------------------------------------------
# Dynamic input size. Traced shapes are graph values (`x.shape[2]` is a 0-d tensor while
# tracing), but the model caches size-dependent tensors (anchors, position embeddings) and turns
# shapes into Python ints, which freezes the input size into the graph. For a dynamic-size
# export these methods are replaced by versions that compute everything from the traced shapes.


def _size(value: Any) -> Any:
    """A traced size (0-d tensor) as is; a Python int as a tensor (eager use)."""
    return value if isinstance(value, Tensor) else torch.tensor(value)


def traced_position_embedding(
    width: Any, height: Any, embed_dim: int, temperature: float = 10000.0
) -> Tensor:
    """`dfseg.nn.aifi.sincos_position_embedding` (official meshgrid quirk included) for traced
    `width`/`height`: [1, H * W, embed_dim] float32."""
    grid_w, grid_h = torch.meshgrid(
        torch.arange(_size(width), dtype=torch.float32),
        torch.arange(_size(height), dtype=torch.float32),
        indexing="ij",
    )
    quarter = embed_dim // 4
    omega = 1.0 / (temperature ** (torch.arange(quarter, dtype=torch.float32) / quarter))
    out_w = grid_w.flatten()[:, None] * omega[None]  # [H*W, C/4]
    out_h = grid_h.flatten()[:, None] * omega[None]
    return torch.cat([out_w.sin(), out_w.cos(), out_h.sin(), out_h.cos()], dim=1)[None]


def traced_anchors(
    shapes: list[tuple[Any, Any]], grid_size: float = 0.05, eps: float = 0.01
) -> tuple[Tensor, Tensor]:
    """`dfseg.nn.anchors.generate_anchors` for traced level shapes: (anchors [1, L, 4] logits
    of normalised cxcywh, +inf where invalid; valid_mask [1, L, 1] bool)."""
    per_level = []
    for level, (height, width) in enumerate(shapes):
        grid_y, grid_x = torch.meshgrid(
            torch.arange(_size(height)), torch.arange(_size(width)), indexing="ij"
        )
        centres = torch.stack([grid_x, grid_y], dim=-1).to(torch.float32) + 0.5  # [H, W, 2]
        centres = centres / torch.stack([_size(width), _size(height)]).to(torch.float32)
        sizes = torch.ones_like(centres) * (grid_size * 2.0**level)
        per_level.append(torch.cat([centres, sizes], dim=-1).reshape(1, -1, 4))
    anchors = torch.cat(per_level, dim=1)  # [1, L, 4]
    valid_mask = ((anchors > eps) & (anchors < 1 - eps)).all(-1, keepdim=True)  # [1, L, 1]
    anchors = torch.log(anchors / (1 - anchors))
    return torch.where(valid_mask, anchors, torch.inf), valid_mask


def _flatten_levels(self: Any, features: list[Tensor]) -> tuple[Tensor, list[tuple[Any, Any]]]:
    projected = [proj(feature) for proj, feature in zip(self.input_proj, features, strict=True)]
    shapes = [(p.shape[2], p.shape[3]) for p in projected]  # traced, not int()
    memory = torch.cat([p.flatten(2).permute(0, 2, 1) for p in projected], dim=1)  # [B, L, C]
    return memory, shapes


def _anchors_for(self: Any, shapes: list[tuple[Any, Any]], device: Any) -> tuple[Tensor, Tensor]:
    anchors, valid_mask = traced_anchors(shapes)
    return anchors.to(device), valid_mask.to(device)


def _position_embedding(self: Any, level: int, height: Any, width: Any, like: Tensor) -> Tensor:
    embed = traced_position_embedding(width, height, self.hidden_dim, self.pe_temperature)
    return embed.to(device=like.device, dtype=like.dtype)


def _split_value_levels(
    memory: Tensor, spatial_shapes: list[tuple[Any, Any]], num_heads: int
) -> list[Tensor]:
    """`dfseg.nn.deformable_attention.split_value_levels` with traced level sizes (slices
    instead of a split with constant sizes)."""
    head_dim = memory.shape[-1] // num_heads
    value = memory.reshape(memory.shape[0], memory.shape[1], num_heads, head_dim)
    value = value.permute(0, 2, 3, 1)  # [B, M, C/M, L]
    levels, start = [], 0
    for height, width in spatial_shapes:
        stop = start + height * width
        levels.append(value[..., start:stop].reshape(-1, head_dim, height, width))
        start = stop
    return levels


def _dynamic_size_replacements() -> list[tuple[Any, str, Any]]:
    from dfseg.nn import dfine_decoder, hybrid_encoder

    decoder, encoder = dfine_decoder.DFineDecoder, hybrid_encoder.HybridEncoder
    return [
        (decoder, "_flatten_levels", _flatten_levels),
        (decoder, "_anchors_for", _anchors_for),
        (encoder, "_position_embedding", _position_embedding),
        (dfine_decoder, "split_value_levels", _split_value_levels),
    ]


@contextmanager
def dynamic_size_ops() -> Iterator[None]:
    """Trace with the input size as a graph value (see the section comment above).

    Raises:
        ExportError: a replaced method no longer exists in `dfseg.nn` (the model code changed).
    """
    originals = []
    try:
        for owner, attribute, replacement in _dynamic_size_replacements():
            if not hasattr(owner, attribute):
                raise ExportError(
                    f"{getattr(owner, '__name__', owner)}.{attribute} is gone; update "
                    "dfseg.export.tracing for dynamic-size export"
                )
            originals.append((owner, attribute, getattr(owner, attribute)))
            setattr(owner, attribute, replacement)
        yield
    finally:
        for owner, attribute, original in reversed(originals):
            setattr(owner, attribute, original)
