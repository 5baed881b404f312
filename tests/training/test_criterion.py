"""D-FINE criterion against the official implementation's stored losses (`criterion_case.pt`)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from dfseg.training.criterion import build_criterion

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def criterion_case(reference_dir: Path) -> dict:
    return torch.load(
        reference_dir / "n" / "criterion_case.pt", map_location="cpu", weights_only=True
    )


def _same_nested(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_nested(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same_nested(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.dtype == b.dtype and torch.equal(a, b)
    return a == b


def test_every_official_term_is_reproduced(criterion_case: dict) -> None:
    expected: dict[str, float] = criterion_case["loss_dict"]
    losses = build_criterion(num_classes=80, task="detect")(
        criterion_case["outputs"], criterion_case["targets"]
    )
    assert set(losses) == set(expected)
    assert len(losses) == 38
    for name, value in expected.items():
        assert losses[name].dtype == torch.float32 and losses[name].dim() == 0
        torch.testing.assert_close(
            losses[name],
            torch.tensor(value),
            rtol=1e-5,
            atol=1e-6,
            msg=lambda m, n=name: f"{n}: {m}",
        )


def test_the_callers_outputs_are_not_modified(criterion_case: dict) -> None:
    outputs = criterion_case["outputs"]
    snapshot = copy.deepcopy(outputs)
    build_criterion(num_classes=80, task="detect")(outputs, criterion_case["targets"])
    build_criterion(num_classes=80, task="detect")(outputs, criterion_case["targets"])
    assert _same_nested(outputs, snapshot)


def test_repeated_calls_give_identical_values(criterion_case: dict) -> None:
    criterion = build_criterion(num_classes=80, task="detect")
    first = criterion(criterion_case["outputs"], criterion_case["targets"])
    second = criterion(criterion_case["outputs"], criterion_case["targets"])
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_mal_replaces_vfl_and_keeps_the_other_terms(criterion_case: dict) -> None:
    expected: dict[str, float] = criterion_case["loss_dict"]
    losses = build_criterion(num_classes=80, task="detect", use_mal=True)(
        criterion_case["outputs"], criterion_case["targets"]
    )
    assert {k.replace("loss_mal", "loss_vfl") for k in losses} == set(expected)
    assert not any(k.startswith("loss_vfl") for k in losses)
    for name, value in expected.items():
        if not name.startswith("loss_vfl"):
            torch.testing.assert_close(losses[name], torch.tensor(value), rtol=1e-5, atol=1e-6)
    # MAL targets IoU**1.5 < IoU and weighs positives fully, so it differs from VFL
    assert abs(losses["loss_mal"].item() - expected["loss_vfl"]) > 1e-3


def test_half_precision_outputs_are_lossed_in_float32(criterion_case: dict) -> None:
    """AMP hands the criterion bfloat16 tensors; the losses are still float32 and close."""

    def to_bfloat16(value: object) -> object:
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return value.to(torch.bfloat16)
        if isinstance(value, dict):
            return {k: to_bfloat16(v) for k, v in value.items()}
        if isinstance(value, list):
            return [to_bfloat16(v) for v in value]
        return value

    outputs = to_bfloat16(criterion_case["outputs"])
    assert isinstance(outputs, dict)
    losses = build_criterion(num_classes=80, task="detect")(outputs, criterion_case["targets"])
    assert set(losses) == set(criterion_case["loss_dict"])
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    torch.testing.assert_close(
        losses["loss_giou"],
        torch.tensor(criterion_case["loss_dict"]["loss_giou"]),
        rtol=0.05,
        atol=0.05,
    )
