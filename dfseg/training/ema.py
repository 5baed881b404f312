"""Exponential moving average of model weights with D-FINE's warm-up of the decay."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn


class ModelEMA:
    """Keeps `ema = d * ema + (1 - d) * model` for every floating state entry after each update.

    The decay ramps up as d = decay * (1 - exp(-updates / warmup_updates)), so early updates follow
    the model closely (a fresh model's EMA is not dominated by its random start).
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999, warmup_updates: int = 1000) -> None:
        self.module = copy.deepcopy(_unwrap(model)).eval()
        for param in self.module.parameters():
            param.requires_grad_(False)
        self.decay = decay
        self.warmup_updates = warmup_updates
        self.updates = 0

    def current_decay(self) -> float:
        if self.warmup_updates <= 0:
            return self.decay
        return self.decay * (1 - math.exp(-self.updates / self.warmup_updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = self.current_decay()
        model_state = _unwrap(model).state_dict()
        for name, value in self.module.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(decay).add_(model_state[name].detach(), alpha=1 - decay)
            else:
                value.copy_(model_state[name])

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])


def fitted_warmup(total_updates: int, window_fraction: float = 0.1) -> int:
    """A warm-up for which the EMA at the run's end averages about `window_fraction` of its
    updates: the averaging window 1 / (1 - d) of d = 1 - exp(-u / w) is exp(u / w), so
    w = u / ln(fraction * u). Long runs reach the decay's own ceiling long before; the result is
    kept within [10, 2000]."""
    window = max(window_fraction * total_updates, math.e)
    return int(min(2000, max(10, round(total_updates / math.log(window)))))


def _unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DistributedDataParallel / DataParallel."""
    wrappers = (nn.parallel.DistributedDataParallel, nn.DataParallel)
    return model.module if isinstance(model, wrappers) else model
