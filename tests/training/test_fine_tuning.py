"""Fine-tuning levers: a frozen backbone for the first epochs and a layer-wise lr decay."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from training_fixtures import tiny_config

from dfseg.nn import build_model
from dfseg.training.api import train_project
from dfseg.training.hooks import TrainerHook
from dfseg.training.optim import BackboneFreeze, OptimizerSettings, backbone_depth, build_optimizer
from dfseg.training.reports import EpochResult
from dfseg.training.trainer import Trainer


def test_backbone_depth_counts_stages_from_the_top() -> None:
    assert backbone_depth("backbone.stages.3.blocks.0.conv.weight") == 1
    assert backbone_depth("backbone.stages.0.downsample.conv.weight") == 4
    assert backbone_depth("backbone.stem.stem1.conv.weight") == 5
    assert backbone_depth("module.backbone.stages.2.x") == 2  # DDP-wrapped names
    assert backbone_depth("decoder.dec_score_head.0.weight") is None


def test_layer_wise_decay_gives_earlier_stages_smaller_rates() -> None:
    model = build_model("n", 2, "detect", (256, 256))
    settings = OptimizerSettings(lr=1e-3, backbone_lr=4e-4, weight_decay=1e-4, layer_lr_decay=0.5)
    optimizer = build_optimizer(model, settings)
    rate_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert len(rate_of) == len(trainable)  # every trainable parameter in exactly one group
    for name, param in trainable:
        depth = backbone_depth(name)
        expected = 1e-3 if depth is None else 4e-4 * 0.5 ** (depth - 1)
        assert rate_of[id(param)] == pytest.approx(expected), name
    plain = build_optimizer(model, OptimizerSettings(1e-3, 4e-4, 1e-4))
    assert {g["name"] for g in plain.param_groups} == {
        "backbone", "backbone_no_decay", "head", "head_no_decay"
    }  # fmt: skip


def test_unfreezing_leaves_what_the_model_froze_itself_frozen() -> None:
    model = build_model("n", 2, "detect", (256, 256))
    params = dict(model.named_parameters())
    stem = params["backbone.stem.stem1.conv.weight"]
    stem.requires_grad_(False)  # as the official L/X stem is
    freeze = BackboneFreeze()
    assert freeze.set(model, frozen=True)
    assert not any(p.requires_grad for n, p in model.named_parameters() if n.startswith("backbone"))
    assert model.decoder.enc_output.proj.weight.requires_grad
    assert not freeze.set(model, frozen=True)  # already frozen: nothing changes
    assert freeze.set(model, frozen=False)
    assert not stem.requires_grad
    assert params["backbone.stages.1.downsample.conv.weight"].requires_grad


class Snapshots(TrainerHook):
    def __init__(self) -> None:
        self.backbone: list[torch.Tensor] = []
        self.head: list[torch.Tensor] = []

    def on_epoch_end(self, trainer: Trainer, result: EpochResult) -> None:
        params = dict(trainer.parts.raw_model.named_parameters())
        self.backbone.append(
            params["backbone.stages.3.blocks.0.layers.0.conv1.conv.weight"].clone()
        )
        self.head.append(params["decoder.enc_output.proj.weight"].clone())


def test_the_backbone_learns_only_after_its_frozen_epochs(tiny_detect_project: Path) -> None:
    config = tiny_config(
        tiny_detect_project, **{"train.epochs": 3, "train.freeze_backbone_epochs": 2}
    )
    hook = Snapshots()
    report = train_project(config, hooks=[hook])
    assert report is not None and report.epochs_completed == 3
    assert torch.equal(hook.backbone[0], hook.backbone[1])  # frozen in epochs 1 and 2
    assert not torch.equal(hook.backbone[1], hook.backbone[2])  # learning in epoch 3
    assert not torch.equal(hook.head[0], hook.head[1])  # the rest learned all along
    log = (Path(report.run_dir) / "train.log").read_text()
    assert "epoch 1: backbone frozen" in log and "epoch 3: backbone unfrozen" in log
