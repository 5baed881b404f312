from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from dfseg.training.checkpoint_io import CheckpointFileError, load_payload, save_atomic
from dfseg.training.ema import ModelEMA
from dfseg.training.optim import OptimizerSettings, build_optimizer
from dfseg.training.schedule import LrSchedule


class PickledObject:
    """A class instance: unpickling it would run code, so weights_only loading must refuse it."""


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.head = nn.Sequential(nn.Linear(4, 2), nn.LayerNorm(2))
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


def test_parameter_groups_split_backbone_and_exclude_norms_and_biases() -> None:
    model = Tiny()
    optimizer = build_optimizer(
        model, OptimizerSettings(lr=1e-3, backbone_lr=1e-4, weight_decay=0.05)
    )
    by_name = {g["name"]: g for g in optimizer.param_groups}
    assert set(by_name) == {"backbone", "backbone_no_decay", "head", "head_no_decay"}
    ids = {name: {id(p) for p in g["params"]} for name, g in by_name.items()}
    assert ids["backbone"] == {id(model.backbone[0].weight)}
    assert id(model.backbone[1].weight) in ids["backbone_no_decay"]
    assert id(model.head[1].weight) in ids["head_no_decay"]
    assert id(model.head[0].bias) in ids["head_no_decay"]
    assert by_name["backbone"]["lr"] == 1e-4 and by_name["head"]["lr"] == 1e-3
    assert by_name["head_no_decay"]["weight_decay"] == 0.0
    assert by_name["head"]["weight_decay"] == 0.05
    all_ids = set().union(*ids.values())
    assert id(model.frozen.weight) not in all_ids


@pytest.mark.parametrize("name", ["flat_cosine", "onecycle"])
def test_schedule_honours_per_group_rates(name: str) -> None:
    model = Tiny()
    optimizer = build_optimizer(
        model, OptimizerSettings(lr=1e-3, backbone_lr=1e-4, weight_decay=0.0)
    )
    schedule = LrSchedule(name, total_steps=100, warmup_steps=10, min_lr_ratio=0.05)  # type: ignore[arg-type]
    for step in (0, 5, 30, 99):
        schedule.apply(optimizer, step)
        lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}
        assert math.isclose(lrs["backbone"] / lrs["head"], 0.1, rel_tol=1e-9)
    assert schedule.multiplier(0) < schedule.multiplier(9) <= 1.0
    assert schedule.multiplier(99) == pytest.approx(0.05, abs=0.01)
    peak = max(schedule.multiplier(s) for s in range(100))
    assert peak == pytest.approx(1.0, abs=1e-6)


def test_flat_cosine_stays_flat_then_decays() -> None:
    schedule = LrSchedule("flat_cosine", total_steps=100, warmup_steps=5, flat_fraction=0.5)
    assert schedule.multiplier(10) == schedule.multiplier(49) == 1.0
    values = [schedule.multiplier(s) for s in range(50, 100)]
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_ema_warms_up_and_tracks_the_model() -> None:
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    ema = ModelEMA(model, decay=0.9, warmup_updates=2)
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    expected_decay = 0.9 * (1 - math.exp(-1 / 2))
    assert ema.current_decay() == pytest.approx(expected_decay)
    diff_after_one = (ema.module.weight - model.weight).abs().max().item()
    assert diff_after_one == pytest.approx(expected_decay * 1.0, rel=1e-5)
    for _ in range(200):
        ema.update(model)
    assert torch.allclose(ema.module.weight, model.weight, atol=1e-6)
    restored = ModelEMA(nn.Linear(3, 1))
    restored.load_state_dict(ema.state_dict())
    assert restored.updates == 201
    assert torch.equal(restored.module.weight, ema.module.weight)


def test_checkpoints_are_atomic_and_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_atomic({"model": {"w": torch.ones(2)}, "epoch": 3, "names": ["a"]}, path)
    payload = load_payload(path)
    assert payload["epoch"] == 3 and torch.equal(payload["model"]["w"], torch.ones(2))
    assert not list(tmp_path.glob(".last.pt.*"))
    (tmp_path / "bad.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointFileError, match="not a readable checkpoint"):
        load_payload(tmp_path / "bad.pt")

    torch.save({"obj": PickledObject()}, tmp_path / "code.pt")
    with pytest.raises(CheckpointFileError):
        load_payload(tmp_path / "code.pt")


@pytest.mark.parametrize("updates", [300, 600, 3000])
def test_fitted_ema_warmup_averages_about_the_last_tenth_of_the_run(updates: int) -> None:
    from dfseg.training.ema import ModelEMA, fitted_warmup

    ema = ModelEMA(torch.nn.Linear(2, 2), decay=0.9999, warmup_updates=fitted_warmup(updates))
    ema.updates = updates
    window = 1 / (1 - ema.current_decay())  # updates the average effectively spans
    assert 0.07 * updates < window < 0.14 * updates
    assert fitted_warmup(10_000_000) == 2000 and fitted_warmup(1) == 10  # kept within bounds


def test_null_learning_rates_depend_on_whether_the_backbone_is_pretrained() -> None:
    from dfseg.config.train import TrainConfig
    from dfseg.config.variants import model_variant
    from dfseg.training.setup import optimizer_settings

    n = model_variant("n")
    scratch = optimizer_settings(TrainConfig(), n, from_scratch=True)
    assert scratch.lr == pytest.approx(2e-3) and scratch.backbone_lr == pytest.approx(2e-3)
    tuned = optimizer_settings(TrainConfig(), n, from_scratch=False)
    assert (tuned.lr, tuned.backbone_lr) == (n.base_lr, n.backbone_lr)  # D-FINE's own
    given = optimizer_settings(TrainConfig(lr=1e-4), n, from_scratch=True)
    assert given.lr == 1e-4 and given.backbone_lr == pytest.approx(2e-3)


def test_auto_optimizer_is_muon_from_scratch_and_adamw_for_fine_tuning() -> None:
    from dfseg.config.train import TrainConfig
    from dfseg.config.variants import model_variant
    from dfseg.training.setup import optimizer_settings

    n = model_variant("n")
    assert optimizer_settings(TrainConfig(), n, from_scratch=True).name == "muon"
    assert optimizer_settings(TrainConfig(), n, from_scratch=False).name == "adamw"
    chosen = TrainConfig(optimizer="adamw")
    assert optimizer_settings(chosen, n, from_scratch=True).name == "adamw"


def test_null_use_mal_is_mal_from_scratch_and_vfl_for_fine_tuning(tmp_path: Path) -> None:
    """`train.use_mal: null` through the project's criterion: DEIM's MAL from scratch, D-FINE's
    VFL when `model.pretrained` is set; an explicit setting wins either way."""
    from dfseg.config import load_project
    from dfseg.training.setup import project_criterion

    project = tmp_path / "project.yaml"
    project.write_text("data: {path: d, classes: [a, b]}\n")
    (tmp_path / "weights.pt").write_bytes(b"")

    def loss_terms(*overrides: str) -> set[str]:
        criterion = project_criterion(load_project(project, list(overrides)), 2)
        return {name for name in criterion.losses if name in ("mal", "vfl")}

    assert load_project(project).train.use_mal is None
    assert loss_terms() == {"mal"}
    assert loss_terms("model.pretrained=weights.pt") == {"vfl"}
    assert loss_terms("train.use_mal=false") == {"vfl"}
    assert loss_terms("model.pretrained=weights.pt", "train.use_mal=true") == {"mal"}
