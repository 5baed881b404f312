"""Muon + AdamW (`train.optimizer: muon`): the orthogonalisation, which parameters take Muon,
the AdamW half against torch's AdamW, and a checkpoint round trip."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from dfseg.nn import build_model
from dfseg.training import muon
from dfseg.training.muon import MuonAdamW, muon_scale, orthogonalise, takes_muon
from dfseg.training.optim import OptimizerSettings, build_optimizer


@pytest.mark.parametrize("native_bf16", [True, False])
@pytest.mark.parametrize("shape", [(16, 64), (64, 16), (32, 32)])
def test_orthogonalise_flattens_the_spectrum(
    shape: tuple[int, int], native_bf16: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Singular values of a badly conditioned matrix come out near 1 (Newton-Schulz lands them
    in about [0.7, 1.2]), with the singular vectors kept, in bf16 (CPUs that compute it
    natively) and in float32 (the others)."""
    monkeypatch.setattr(muon, "cpu_computes_bf16", lambda: native_bf16)
    muon.newton_schulz_dtype.cache_clear()
    try:
        assert muon.newton_schulz_dtype("cpu") == (torch.bfloat16 if native_bf16 else torch.float32)
        _check_orthogonalised(shape)
    finally:
        muon.newton_schulz_dtype.cache_clear()  # later tests see this CPU's own answer


def _check_orthogonalised(shape: tuple[int, int]) -> None:
    torch.manual_seed(0)
    rows, cols = shape
    u, _ = torch.linalg.qr(torch.randn(rows, rows))
    v, _ = torch.linalg.qr(torch.randn(cols, cols))
    k = min(rows, cols)
    spectrum = torch.logspace(0, -2, k)  # condition number 100
    matrix = u[:, :k] @ torch.diag(spectrum) @ v[:, :k].T
    result = orthogonalise(matrix)
    singular = torch.linalg.svdvals(result.float())
    assert singular.min() > 0.5 and singular.max() < 1.3
    polar = u[:, :k] @ v[:, :k].T  # the exact U V^T
    cosine = (result * polar).sum() / (result.norm() * polar.norm())
    assert cosine > 0.95


def test_muon_scale_matches_adamw_rms() -> None:
    assert muon_scale(torch.Size([256, 64])) == pytest.approx(0.2 * 16)
    assert muon_scale(torch.Size([32, 16, 3, 3])) == pytest.approx(0.2 * 12)  # 16 * 9 = 144


def test_hidden_weights_take_muon_prediction_layers_do_not() -> None:
    model = build_model("n", num_classes=3, task="segment", image_size=(256, 256))
    modules = dict(model.named_modules())
    chosen = {
        name
        for name, param in model.named_parameters()
        if takes_muon(name, param, modules[name.rpartition(".")[0]])
    }
    assert "backbone.stem.stem1.conv.weight" in chosen
    assert "encoder.encoder.0.layers.0.linear1.weight" in chosen
    assert "decoder.decoder.layers.0.self_attn.in_proj_weight" in chosen
    for name in chosen:
        for mark in ("score_head", "bbox_head", "sampling_offsets", "denoising_class_embed"):
            assert mark not in name
        assert not name.endswith(".bias")
    assert "decoder.dec_score_head.0.weight" not in chosen


def test_build_optimizer_splits_groups_only_with_muon() -> None:
    model = build_model("n", num_classes=3, task="detect", image_size=(256, 256))
    adamw = build_optimizer(model, OptimizerSettings(lr=1e-3, backbone_lr=5e-4, weight_decay=0.1))
    assert isinstance(adamw, torch.optim.AdamW)
    assert [g["name"] for g in adamw.param_groups] == [
        "backbone", "backbone_no_decay", "head", "head_no_decay"
    ]  # fmt: skip
    settings = OptimizerSettings(lr=1e-3, backbone_lr=5e-4, weight_decay=0.1, name="muon")
    muon = build_optimizer(model, settings)
    assert isinstance(muon, MuonAdamW)
    by_name = {g["name"]: g for g in muon.param_groups}
    assert set(by_name) == {
        "backbone_muon",
        "backbone_no_decay",
        "head_muon",
        "head",
        "head_no_decay",
    }  # every decayed backbone weight is a hidden kernel
    assert by_name["backbone_muon"]["muon"] and not by_name["head"]["muon"]
    assert by_name["backbone_muon"]["lr"] == 5e-4 and by_name["head_muon"]["lr"] == 1e-3
    assert by_name["head_no_decay"]["weight_decay"] == 0.0
    total = sum(len(g["params"]) for g in muon.param_groups)
    assert total == sum(1 for p in model.parameters() if p.requires_grad)


def _toy() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def _steps(model: nn.Module, optimizer: torch.optim.Optimizer, n: int) -> list[float]:
    torch.manual_seed(2)
    x, y = torch.randn(32, 6), torch.randn(32, 3)
    losses = []
    for _ in range(n):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_the_adamw_half_equals_torch_adamw() -> None:
    ours, reference = _toy(), _toy()
    groups = [{"params": list(ours.parameters()), "weight_decay": 0.05, "muon": False}]
    _steps(ours, MuonAdamW(groups, lr=3e-3, betas=(0.9, 0.99)), 20)
    torch_groups = [{"params": list(reference.parameters()), "weight_decay": 0.05}]
    _steps(reference, torch.optim.AdamW(torch_groups, lr=3e-3, betas=(0.9, 0.99)), 20)
    for a, b in zip(ours.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_muon_descends_and_resumes_from_its_state() -> None:
    model = _toy()
    weights = [p for p in model.parameters() if p.ndim == 2]
    others = [p for p in model.parameters() if p.ndim < 2]
    optimizer = MuonAdamW(
        [{"params": weights, "muon": True}, {"params": others, "muon": False}], lr=2e-2
    )
    losses = _steps(model, optimizer, 60)
    assert losses[-1] < 0.75 * losses[0]
    # a copy resumed from the state dict steps exactly like the original
    twin = copy.deepcopy(model)
    twin_weights = [p for p in twin.parameters() if p.ndim == 2]
    twin_others = [p for p in twin.parameters() if p.ndim < 2]
    resumed = MuonAdamW(
        [{"params": twin_weights, "muon": True}, {"params": twin_others, "muon": False}], lr=2e-2
    )
    resumed.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    _steps(model, optimizer, 3)
    _steps(twin, resumed, 3)
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b)
