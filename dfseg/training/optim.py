"""AdamW (or Muon + AdamW) with parameter groups: separate backbone lr, no weight decay on norms
and biases."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dfseg.training.muon import MuonAdamW, takes_muon

_NORM_TYPES = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.SyncBatchNorm,
)


@dataclass(frozen=True)
class OptimizerSettings:
    """Learning rates and AdamW hyper-parameters (see `config.train.DEFAULT_OPTIMIZER_SETTINGS`)."""

    lr: float
    backbone_lr: float
    weight_decay: float
    betas: tuple[float, float] = (0.9, 0.999)
    layer_lr_decay: float = 1.0  # backbone stage k of n gets backbone_lr * decay ** (n - k)
    name: str = "adamw"  # or "muon": Muon for hidden weight matrices and kernels (`muon.py`)
    momentum: float = 0.95  # Muon's momentum


def no_decay_parameter_names(model: nn.Module) -> set[str]:
    """Names of parameters that get no weight decay: norm layers' weights, all biases, and
    scalar/vector parameters (LearnableAffineBlock scale/bias, FDR `up`)."""
    names: set[str] = set()
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            full = f"{module_name}.{param_name}" if module_name else param_name
            if isinstance(module, _NORM_TYPES) or param_name == "bias" or param.ndim <= 1:
                names.add(full)
    return names


def backbone_depth(name: str) -> int | None:
    """Position of a backbone parameter from the top: 1 for the last stage, 2 for the one
    before, ..., and one more than the first stage for the stem; None outside the backbone."""
    parts = name.split(".")
    if "backbone" not in parts:
        return None
    rest = parts[parts.index("backbone") + 1 :]
    if rest[:1] == ["stages"] and len(rest) > 1 and rest[1].isdigit():
        return _NUM_STAGES - int(rest[1])
    return _NUM_STAGES + 1  # the stem (and anything before the stages)


_NUM_STAGES = 4  # HGNetv2 has four stages after its stem


def build_optimizer(
    model: nn.Module,
    settings: OptimizerSettings,
    extra: list[nn.Parameter] | None = None,
) -> torch.optim.Optimizer:
    """AdamW with groups: backbone / rest x decay / no decay (and, with a layer-wise lr decay
    below 1, one backbone group per stage, earlier stages learning slower). With
    `settings.name == "muon"` each decayed group is split once more: its hidden weight matrices
    and kernels step with Muon (`MuonAdamW`, same lr), the rest with AdamW.

    Every group stores its own `initial_lr`, which the schedule scales (so the backbone keeps its
    own rate through warm-up and decay - a scalar OneCycle max_lr would silently drop it).
    Frozen parameters (requires_grad False) are left out. `extra` parameters that train beside
    the model (distillation's feature projections) form a last AdamW group ("distill") at the
    head's rate.
    """
    muon = settings.name == "muon"
    no_decay = no_decay_parameter_names(model)
    modules = dict(model.named_modules())
    groups: dict[tuple[int, bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        depth = backbone_depth(name)
        if depth is not None and settings.layer_lr_decay == 1.0:
            depth = 1  # one backbone group
        decays = name not in no_decay
        module = modules[name.rpartition(".")[0]]
        with_muon = muon and decays and takes_muon(name, param, module)
        groups.setdefault((depth or 0, decays, with_muon), []).append(param)
    param_groups = []
    # backbone groups first, decayed before not decayed, head last: the order of dfseg 0.1's
    # groups, so an optimizer state saved in an older last.pt still loads on resume
    order = sorted(groups, key=lambda key: (key[0] == 0, key[0], not key[1], not key[2]))
    for depth, decays, with_muon in order:
        params = groups[(depth, decays, with_muon)]
        if depth == 0:
            lr, label = settings.lr, "head"
        else:
            lr = settings.backbone_lr * settings.layer_lr_decay ** (depth - 1)
            label = "backbone" if settings.layer_lr_decay == 1.0 else f"backbone_depth{depth}"
        suffix = ("_muon" if with_muon else "") + ("" if decays else "_no_decay")
        group = {
            "params": params,
            "lr": lr,
            "initial_lr": lr,
            "weight_decay": settings.weight_decay if decays else 0.0,
            "name": f"{label}{suffix}",
        }
        if muon:
            group["muon"] = with_muon
        param_groups.append(group)
    if extra:
        group = {
            "params": list(extra),
            "lr": settings.lr,
            "initial_lr": settings.lr,
            "weight_decay": settings.weight_decay,
            "name": "distill",
        }
        if muon:
            group["muon"] = False
        param_groups.append(group)
    if muon:
        return MuonAdamW(
            param_groups, lr=settings.lr, betas=settings.betas, momentum=settings.momentum
        )
    return torch.optim.AdamW(param_groups, lr=settings.lr, betas=settings.betas)


def optimizer_kind(state: dict) -> str:
    """Which optimizer `build_optimizer` made when this state dict was saved: muon or adamw."""
    return "muon" if any("muon" in group for group in state["param_groups"]) else "adamw"


class BackboneFreeze:
    """Freezes the backbone's trainable weights and later gives back exactly those (what the
    model froze itself, the official L/X stem, stays frozen). Batch-norm statistics still follow
    the data in training mode. The optimizer keeps their groups: a parameter without a gradient
    is simply not stepped."""

    def __init__(self) -> None:
        self._frozen: list[nn.Parameter] = []

    def set(self, model: nn.Module, frozen: bool) -> bool:
        """Freeze or unfreeze; returns whether anything changed."""
        if frozen and not self._frozen:
            self._frozen = [
                param
                for name, param in model.named_parameters()
                if backbone_depth(name) is not None and param.requires_grad
            ]
            for param in self._frozen:
                param.requires_grad_(False)
            return bool(self._frozen)
        if not frozen and self._frozen:
            for param in self._frozen:
                param.requires_grad_(True)
            self._frozen = []
            return True
        return False
