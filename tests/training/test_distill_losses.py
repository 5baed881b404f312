"""The distillation terms on hand-computed cases: zero when the student equals the teacher, the
value of small cases written out, the t^2 temperature scaling, and the gradient pushing the
student towards the teacher."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dfseg.training.criterion.distill import (
    distribution_kl,
    feature_distillation,
    feature_projectors,
    pixel_kl,
    probability_mse,
    sigmoid_kl,
    standardise,
)
from dfseg.training.criterion.matcher import HungarianMatcher
from dfseg.training.distill import paired_queries


def _softmax(values: list[float]) -> list[float]:
    exps = [math.exp(v) for v in values]
    return [e / sum(exps) for e in exps]


def _kl(p: list[float], q: list[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))


def test_pixel_kl_is_zero_for_equal_logits() -> None:
    logits = torch.randn(2, 5, 4, 3)
    assert pixel_kl(logits, logits.clone(), 2.0).item() == pytest.approx(0.0, abs=1e-6)
    assert probability_mse(logits, logits.clone()).item() == 0.0


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_pixel_kl_matches_the_written_out_value_times_t_squared(temperature: float) -> None:
    student, teacher = [1.0, -0.5, 0.2], [2.0, 0.0, -1.0]
    s = torch.tensor(student).view(1, 3, 1, 1)
    t = torch.tensor(teacher).view(1, 3, 1, 1)
    p = _softmax([v / temperature for v in teacher])
    q = _softmax([v / temperature for v in student])
    expected = _kl(p, q) * temperature**2
    assert pixel_kl(s, t, temperature).item() == pytest.approx(expected, rel=1e-5)


def test_pixel_kl_averages_over_pixels() -> None:
    s = torch.tensor([[0.0, 0.0], [3.0, 0.0]]).T.reshape(1, 2, 1, 2)  # pixel 0 equal, pixel 1 not
    t = torch.tensor([[0.0, 0.0], [0.0, 0.0]]).T.reshape(1, 2, 1, 2)
    single = pixel_kl(s[..., 1:], t[..., 1:], 1.0)
    assert pixel_kl(s, t, 1.0).item() == pytest.approx(single.item() / 2, rel=1e-6)


def test_pixel_kl_gradient_raises_the_class_the_teacher_prefers() -> None:
    student = torch.zeros(1, 3, 1, 1, requires_grad=True)
    teacher = torch.tensor([0.0, 4.0, 0.0]).view(1, 3, 1, 1)
    pixel_kl(student, teacher, 2.0).backward()
    grad = student.grad.view(3)
    assert grad[1] < 0 and grad[0] > 0 and grad[2] > 0  # descent raises class 1


def test_probability_mse_value() -> None:
    s = torch.tensor([0.0, 0.0]).view(1, 2, 1, 1)
    t = torch.tensor([math.log(3.0), 0.0]).view(1, 2, 1, 1)  # softmax (0.75, 0.25)
    assert probability_mse(s, t).item() == pytest.approx(0.25**2, rel=1e-6)


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_sigmoid_kl_is_the_binary_kl_times_t_squared(temperature: float) -> None:
    s, t = 0.5, -1.5
    p = 1 / (1 + math.exp(-t / temperature))
    q = 1 / (1 + math.exp(-s / temperature))
    expected = (p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))) * temperature**2
    value = sigmoid_kl(torch.tensor([[s]]), torch.tensor([[t]]), temperature)
    assert value.item() == pytest.approx(expected, rel=1e-5)
    logits = torch.randn(4, 7)
    assert sigmoid_kl(logits, logits.clone(), temperature).item() == pytest.approx(0, abs=1e-6)


def test_sigmoid_kl_gradient_moves_the_student_to_the_teacher() -> None:
    student = torch.tensor([[-2.0, 2.0]], requires_grad=True)
    teacher = torch.tensor([[1.0, -1.0]])
    sigmoid_kl(student, teacher, 2.0).backward()
    assert student.grad[0, 0] < 0 < student.grad[0, 1]


def test_sigmoid_kl_of_no_pairs_is_zero_with_a_graph() -> None:
    empty = torch.zeros(0, 3, requires_grad=True)
    value = sigmoid_kl(empty, torch.zeros(0, 3), 2.0)
    assert value.item() == 0.0 and value.requires_grad


def test_distribution_kl_per_edge() -> None:
    bins = 3
    teacher = torch.tensor([[2.0, 0.0, 0.0] * 4])
    student = torch.tensor([[0.0, 0.0, 0.0] * 4])
    p = _softmax([2.0 / 2, 0.0, 0.0])
    q = _softmax([0.0, 0.0, 0.0])
    expected = _kl(p, q) * 4.0  # every edge alike, mean over edges, x t^2 (t = 2)
    assert distribution_kl(student, teacher, 2.0).item() == pytest.approx(expected, rel=1e-5)
    assert distribution_kl(teacher, teacher.clone(), 2.0).item() == pytest.approx(0, abs=1e-6)
    with pytest.raises(ValueError, match="reg_max"):
        distribution_kl(student, torch.zeros(1, 4 * (bins + 1)), 2.0)


def test_distribution_kl_gradient_moves_mass_to_the_teachers_bin() -> None:
    student = torch.zeros(1, 8, requires_grad=True)  # reg_max 1: two bins per edge
    teacher = torch.tensor([[3.0, 0.0] * 4])
    distribution_kl(student, teacher, 1.0).backward()
    grad = student.grad.view(4, 2)
    assert (grad[:, 0] < 0).all() and (grad[:, 1] > 0).all()


def test_standardise_per_image_and_channel() -> None:
    features = torch.randn(2, 3, 5, 4) * 7 + 11
    out = standardise(features)
    assert torch.allclose(out.mean(dim=(2, 3)), torch.zeros(2, 3), atol=1e-5)
    assert torch.allclose(out.std(dim=(2, 3), unbiased=False), torch.ones(2, 3), atol=1e-3)


def test_feature_distillation_ignores_scale_and_offset_and_resizes_the_teacher() -> None:
    student = [torch.randn(2, 4, 8, 8), torch.randn(2, 4, 4, 4)]
    identity = feature_projectors([4, 4], [4, 4])
    assert all(isinstance(layer, nn.Identity) for layer in identity)
    affine = [3.0 * s + 1.0 for s in student]
    assert feature_distillation(student, affine, identity).item() == pytest.approx(0, abs=1e-6)
    other = [torch.randn(2, 4, 8, 8), torch.randn(2, 4, 4, 4)]
    assert feature_distillation(student, other, identity).item() > 0.5
    big = [torch.nn.functional.interpolate(s, scale_factor=2.0) for s in student]
    assert feature_distillation(student, big, identity).item() < 0.5  # resized, then compared


def test_feature_projections_are_trained_1x1_convs() -> None:
    projectors = feature_projectors([4], [6])
    (conv,) = projectors
    assert isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1)
    student = [torch.randn(1, 4, 6, 6)]
    teacher = [torch.randn(1, 6, 6, 6)]
    loss = feature_distillation(student, teacher, projectors)
    loss.backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0


def test_queries_are_paired_through_the_object_both_match() -> None:
    """Two objects; the student finds object 0 with query 2 and object 1 with query 0, the
    teacher with queries 5 and 1: the pairs are (2, 5) and (0, 1)."""
    objects = torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.7, 0.7, 0.2, 0.2]])
    targets = [{"labels": torch.tensor([0, 1]), "boxes": objects}]

    def outputs(queries: int, rows: dict[int, int]) -> dict[str, torch.Tensor]:
        boxes = torch.full((1, queries, 4), 0.05)
        boxes[..., :2] = torch.linspace(0.05, 0.95, queries)[None, :, None]
        logits = torch.full((1, queries, 2), -5.0)
        for query, obj in rows.items():
            boxes[0, query] = objects[obj]
            logits[0, query, int(targets[0]["labels"][obj])] = 5.0
        return {"pred_logits": logits, "pred_boxes": boxes}

    student = outputs(4, {2: 0, 0: 1})
    teacher = outputs(6, {5: 0, 1: 1})
    images, student_q, teacher_q = paired_queries(HungarianMatcher(), student, teacher, targets)
    pairs = sorted(zip(student_q.tolist(), teacher_q.tolist(), strict=True))
    assert images.tolist() == [0, 0] and pairs == [(0, 1), (2, 5)]
