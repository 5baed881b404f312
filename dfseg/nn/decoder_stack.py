"""The decoder layer stack (official `TransformerDecoder`): layers, one LQE per layer, and the
shared FDR constants `up` and `reg_scale`. The refinement loop lives in `DFineDecoder`."""

from __future__ import annotations

import torch.nn as nn

from dfseg.nn.decoder_layer import DecoderLayer
from dfseg.nn.lqe import LQE


class DecoderLayerStack(nn.Module):
    """Container whose parameter names match `decoder.decoder.*` in official checkpoints.

    Args:
        up: the shared [1] float parameter (also registered on the parent decoder).
        reg_scale: the shared [1] int64 parameter (likewise).
        num_layers: decoder layers.
        dim: query width.
        num_heads: attention heads.
        ffn_dim: feed-forward width.
        num_points: deformable sampling points per level.
        reg_max: FDR bins per edge minus one.
    """

    def __init__(
        self,
        up: nn.Parameter,
        reg_scale: nn.Parameter,
        num_layers: int,
        dim: int,
        num_heads: int,
        ffn_dim: int,
        num_points: tuple[int, ...],
        reg_max: int,
    ) -> None:
        super().__init__()
        self.up = up
        self.reg_scale = reg_scale
        self.layers = nn.ModuleList(
            DecoderLayer(dim, num_heads, ffn_dim, num_points) for _ in range(num_layers)
        )
        self.lqe_layers = nn.ModuleList(LQE(4, 64, 2, reg_max) for _ in range(num_layers))
