"""Location Quality Estimator: adjusts class logits by how peaked the box-edge distributions are."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from dfseg.nn.mlp import MLP


class LQE(nn.Module):
    """logits + MLP(top-k probabilities of each edge distribution and their mean).

    Args:
        top_k: probabilities kept per edge (4 in D-FINE).
        hidden_dim: MLP width (64).
        num_layers: MLP depth (2).
        reg_max: bins per edge minus one (32).
    """

    def __init__(self, top_k: int, hidden_dim: int, num_layers: int, reg_max: int) -> None:
        super().__init__()
        self.top_k = top_k
        self.reg_max = reg_max
        self.reg_conf = MLP(4 * (top_k + 1), hidden_dim, 1, num_layers)
        nn.init.zeros_(self.reg_conf.output_layer.weight)
        nn.init.zeros_(self.reg_conf.output_layer.bias)

    def forward(self, logits: Tensor, pred_corners: Tensor) -> Tensor:
        """logits [B, Q, C], pred_corners [B, Q, 4 * (reg_max + 1)] -> [B, Q, C]."""
        batch, queries, _ = pred_corners.shape
        probs = F.softmax(pred_corners.reshape(batch, queries, 4, self.reg_max + 1), dim=-1)
        top, _ = probs.topk(self.top_k, dim=-1)  # [B, Q, 4, k]
        stats = torch.cat([top, top.mean(dim=-1, keepdim=True)], dim=-1)  # [B, Q, 4, k + 1]
        return logits + self.reg_conf(stats.reshape(batch, queries, -1))
