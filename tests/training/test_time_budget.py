"""`train.time_budget`: the plan from measured epoch costs, and a run that ends on time."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from training_fixtures import tiny_config

from dfseg.training.api import ResumeError, config_for_resume, train_project
from dfseg.training.budget import TimeBudget
from dfseg.training.checkpoint_io import load_payload
from dfseg.training.hooks import TrainerHook
from dfseg.training.reports import EpochResult
from dfseg.training.trainer import Trainer


def test_plan_is_the_cap_until_an_epoch_is_timed() -> None:
    assert TimeBudget.from_minutes(1, max_epochs=40).planned_epochs(0) == 40


def test_plan_counts_training_and_validation_of_each_epoch() -> None:
    budget = TimeBudget(seconds=99, max_epochs=50)
    budget.record_training(8)
    budget.record_validation(2)
    # 89 s left at 10 s an epoch (8 train + 2 validation): 8 more after the first
    assert budget.planned_epochs(1) == 9
    budget.record_training(8)
    # 81 s left: 8 more epochs, but epoch 2's validation (2 s) is still to come: 79 s, 7 more
    assert budget.planned_epochs(2) == 10
    assert budget.planned_epochs(2, validation_pending=True) == 9


def test_plan_never_exceeds_the_epochs_nor_goes_below_what_is_done() -> None:
    fast = TimeBudget(seconds=1000, max_epochs=5)
    fast.record_training(1)
    assert fast.planned_epochs(1) == 5
    late = TimeBudget(seconds=10, max_epochs=50)
    for _ in range(3):
        late.record_training(6)
    assert late.planned_epochs(3) == 3  # over budget: stop now, not "minus one epoch"


def test_validating_every_few_epochs_reserves_the_final_validation() -> None:
    budget = TimeBudget(seconds=100, max_epochs=50, val_every=5)
    budget.record_training(4)
    budget.record_validation(10)  # 86 s left, final validation 10 s reserved: 76 s
    # an epoch costs 4 s + 10 s / 5 (its share of the validations) = 6 s -> 12 more
    assert budget.planned_epochs(1) == 13


def test_recent_epochs_predict_the_next_and_state_round_trips() -> None:
    budget = TimeBudget(seconds=100, max_epochs=50)
    for seconds in (30.0, 5.0, 5.0, 5.0):  # the first epoch pays the start-up
        budget.record_training(seconds)
    assert budget.planned_epochs(4) == 4 + 55 // 5
    copy = TimeBudget(seconds=100, max_epochs=50)
    copy.load_state_dict(budget.state_dict())
    assert copy.planned_epochs(4) == budget.planned_epochs(4) and copy.spent == 45


class RecordSchedule(TrainerHook):
    def __init__(self) -> None:
        self.seen: list[tuple[int, int, int]] = []

    def on_epoch_end(self, trainer: Trainer, result: EpochResult) -> None:
        schedule = trainer.parts.tools.schedule
        self.seen.append((result.epoch, result.epochs, schedule.total_steps))


def test_a_run_past_its_budget_ends_with_a_validated_best(tiny_detect_project: Path) -> None:
    # 0.001 min: the first epoch alone overruns it, so it is the last and is validated
    config = tiny_config(
        tiny_detect_project, **{"train.epochs": 5, "train.time_budget": 0.001, "train.val_every": 3}
    )
    hook = RecordSchedule()
    report = train_project(config, hooks=[hook])
    assert report is not None
    assert report.epochs_completed == 1 and report.epochs == 1 and report.time_budget == 0.001
    assert report.final is not None and report.best_epoch == 1  # validated although val_every=3
    run = Path(report.run_dir)
    steps_per_epoch = load_payload(run / "last.pt")["optimizer_steps"]
    # the schedule was laid out again for the one epoch that fitted (5 were asked for)
    assert hook.seen == [(1, 1, steps_per_epoch)]
    with (run / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1 and rows[0]["metrics/mAP50-95(B)"] != ""
    assert load_payload(run / "best.pt")["epoch"] == 1
    with pytest.raises(ResumeError, match="used its time budget"):
        config_for_resume(run / "last.pt", [])
    longer = config_for_resume(run / "last.pt", ["train.time_budget=null"])
    assert longer.train.time_budget is None and longer.train.epochs == 5
