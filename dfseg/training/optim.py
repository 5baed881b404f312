"""AdamW with parameter groups: separate backbone lr, no weight decay on norms and biases."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

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


def build_optimizer(model: nn.Module, settings: OptimizerSettings) -> torch.optim.AdamW:
    """AdamW with four groups: backbone / rest x decay / no decay.

    Every group stores its own `initial_lr`, which the schedule scales (so the backbone keeps its
    own rate through warm-up and decay - a scalar OneCycle max_lr would silently drop it).
    Frozen parameters (requires_grad False) are left out.
    """
    no_decay = no_decay_parameter_names(model)
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {
        (True, True): [],
        (True, False): [],
        (False, True): [],
        (False, False): [],
    }
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        is_backbone = name.startswith("backbone.") or ".backbone." in name
        groups[(is_backbone, name not in no_decay)].append(param)
    param_groups = []
    for (is_backbone, decays), params in groups.items():
        if not params:
            continue
        lr = settings.backbone_lr if is_backbone else settings.lr
        param_groups.append(
            {
                "params": params,
                "lr": lr,
                "initial_lr": lr,
                "weight_decay": settings.weight_decay if decays else 0.0,
                "name": f"{'backbone' if is_backbone else 'head'}{'' if decays else '_no_decay'}",
            }
        )
    return torch.optim.AdamW(param_groups, lr=settings.lr, betas=settings.betas)
