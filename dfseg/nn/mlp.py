"""A plain multi-layer perceptron (Linear -> act -> ... -> Linear), as used by the D-FINE heads."""

from __future__ import annotations

from typing import cast

import torch.nn as nn
from torch import Tensor


class MLP(nn.Module):
    """`num_layers` linear layers with ReLU between them and none after the last.

    Parameter names (`layers.{i}.weight`) follow the official D-FINE checkpoints.

    Args:
        input_dim: size of the last input dimension.
        hidden_dim: width of every hidden layer.
        output_dim: size of the last output dimension.
        num_layers: number of linear layers (>= 1).
    """

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        in_dims = [input_dim] + [hidden_dim] * (num_layers - 1)
        out_dims = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(in_dims, out_dims, strict=True))
        self.act = nn.ReLU()

    @property
    def output_layer(self) -> nn.Linear:
        """The last linear layer (zero-initialised by several D-FINE heads)."""
        return cast(nn.Linear, self.layers[-1])

    def forward(self, x: Tensor) -> Tensor:
        """[..., input_dim] -> [..., output_dim]."""
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < last:
                x = self.act(x)
        return x
