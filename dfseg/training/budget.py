"""`train.time_budget`: how many epochs fit in the minutes a run is given (Ultralytics' `time=`).

After every epoch the plan is re-estimated from the measured epoch and validation times, and the
schedule that depends on the run's length (the lr warm-up/flat/cosine steps, the mosaic-off
window) is laid out again for the planned number of epochs, so a run cut short by its budget
still anneals and ends on plain images. The epoch after which no other epoch fits is the last:
it is validated, so the run ends with a final validation and a best.pt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class TimeBudget:
    """The budget and what the epochs so far have cost.

    Attributes:
        seconds: the whole budget (training, validation, checkpoints).
        max_epochs: `train.epochs`: the plan never exceeds it.
        val_every: validation cadence (its cost is spread over the epochs between validations).
        spent: seconds used so far (kept across a resume).
        train_seconds: wall time of each finished epoch without its validation.
        validation_seconds: wall time of each validation.
    """

    seconds: float
    max_epochs: int
    val_every: int = 1
    spent: float = 0.0
    train_seconds: list[float] = field(default_factory=list)
    validation_seconds: list[float] = field(default_factory=list)

    @classmethod
    def from_minutes(cls, minutes: float, max_epochs: int, val_every: int = 1) -> TimeBudget:
        return cls(seconds=60.0 * minutes, max_epochs=max_epochs, val_every=val_every)

    def record_training(self, seconds: float) -> None:
        """An epoch took `seconds` to train and save."""
        self.spent += seconds
        self.train_seconds.append(seconds)

    def record_validation(self, seconds: float) -> None:
        self.spent += seconds
        self.validation_seconds.append(seconds)

    def planned_epochs(self, done: int, validation_pending: bool = False) -> int:
        """Total epochs of the run given `done` finished ones: the most that end within the
        budget, counting a final validation, never fewer than `done` nor more than max_epochs.
        Before any epoch has been timed the plan is `max_epochs`.

        Args:
            done: epochs trained so far.
            validation_pending: the last of them is still to be validated (its cost is not
                spent yet).
        """
        if not self.train_seconds:
            return self.max_epochs
        # recent epochs predict the next best (the first carries start-up costs)
        recent = self.train_seconds[-3:] if len(self.train_seconds) > 1 else self.train_seconds
        validation = _mean(self.validation_seconds)
        per_epoch = _mean(recent) + validation / self.val_every
        final_validation = validation if self.val_every > 1 else 0.0  # the last is validated
        left = self.seconds - self.spent - final_validation - validation * validation_pending
        more = math.floor(max(0.0, left) / max(per_epoch, 1e-6))
        return max(done, min(self.max_epochs, done + more))

    def state_dict(self) -> dict[str, float | list[float]]:
        return {
            "spent": self.spent,
            "train_seconds": list(self.train_seconds),
            "validation_seconds": list(self.validation_seconds),
        }

    def load_state_dict(self, state: dict[str, float | list[float]]) -> None:
        self.spent = float(state["spent"])  # type: ignore[arg-type]
        self.train_seconds = [float(v) for v in state["train_seconds"]]  # type: ignore[union-attr]
        self.validation_seconds = [float(v) for v in state["validation_seconds"]]  # type: ignore[union-attr]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
