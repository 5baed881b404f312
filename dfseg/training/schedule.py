"""Learning-rate schedules as pure step -> multiplier functions.

Each optimizer group's lr is `initial_lr * multiplier(step)`, so per-group rates (the backbone's
own lr) are honoured, and resuming only needs the step number: the schedule has no hidden state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

ScheduleName = Literal["flat_cosine", "onecycle"]


@dataclass(frozen=True)
class LrSchedule:
    """Warm-up, then flat-cosine (D-FINE) or one-cycle, over `total_steps` optimizer steps.

    Attributes:
        name: flat_cosine keeps the base lr for `flat_fraction` of training then follows a cosine
            to `min_lr_ratio`; onecycle rises with a cosine to the base lr over the warm-up and
            anneals with a cosine to `min_lr_ratio`.
        total_steps: optimizer steps of the whole run.
        warmup_steps: linear (flat_cosine) or cosine (onecycle) warm-up length.
    """

    name: ScheduleName
    total_steps: int
    warmup_steps: int
    flat_fraction: float = 0.5
    min_lr_ratio: float = 0.05

    def multiplier(self, step: int) -> float:
        """Factor applied to each group's `initial_lr` at optimizer step `step` (0-based)."""
        return _SCHEDULES[self.name](self, step)

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> None:
        """Set every group's lr for `step`."""
        factor = self.multiplier(step)
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor


def _flat_cosine(schedule: LrSchedule, step: int) -> float:
    if step < schedule.warmup_steps:
        return (step + 1) / schedule.warmup_steps
    flat_end = max(schedule.warmup_steps, int(schedule.flat_fraction * schedule.total_steps))
    if step < flat_end:
        return 1.0
    span = max(1, schedule.total_steps - flat_end)
    progress = min(1.0, (step - flat_end) / span)
    floor = schedule.min_lr_ratio
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def _one_cycle(schedule: LrSchedule, step: int) -> float:
    floor = schedule.min_lr_ratio
    start = 0.04  # OneCycle's 1/div_factor (25)
    if step < schedule.warmup_steps:
        progress = step / max(1, schedule.warmup_steps)
        return start + (1 - start) * 0.5 * (1 - math.cos(math.pi * progress))
    span = max(1, schedule.total_steps - schedule.warmup_steps)
    progress = min(1.0, (step - schedule.warmup_steps) / span)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


_SCHEDULES = {"flat_cosine": _flat_cosine, "onecycle": _one_cycle}
