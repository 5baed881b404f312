"""`dfseg.ops.fdr`: the bin positions W(n), the distribution integral, and the encode/decode
round trip of box edges around a reference box (what FGL trains and the decoder predicts)."""

from __future__ import annotations

import pytest
import torch

from dfseg.ops.boxes import box_cxcywh_to_xyxy
from dfseg.ops.fdr import (
    box_to_distance,
    distance_to_box_cxcywh,
    distribution_integral,
    weighting_function,
)

REG_MAX = 32
UP = torch.tensor([0.5])


@pytest.mark.parametrize("reg_scale", [4.0, 8.0])
def test_bins_are_increasing_symmetric_and_end_at_twice_up_times_scale(reg_scale: float) -> None:
    bins = weighting_function(REG_MAX, UP, reg_scale)
    assert bins.shape == (REG_MAX + 1,)
    assert (bins[1:] > bins[:-1]).all()
    torch.testing.assert_close(bins, -bins.flip(0))
    assert bins[REG_MAX // 2] == 0
    assert bins[-1].item() == pytest.approx(2 * 0.5 * reg_scale)
    torch.testing.assert_close(bins, weighting_function(REG_MAX, UP, torch.tensor([reg_scale])))


def test_the_integral_of_a_peaked_distribution_is_its_bin() -> None:
    bins = weighting_function(REG_MAX, UP, 4.0)
    logits = torch.full((2, 4, REG_MAX + 1), -50.0)
    for edge, index in enumerate([0, 5, 16, 32]):
        logits[0, edge, index] = 50.0
    logits[1] = 0.0  # uniform: the mean of symmetric bins is 0
    offsets = distribution_integral(logits.reshape(2, -1), bins)
    assert offsets.shape == (2, 4)
    torch.testing.assert_close(offsets[0], bins[[0, 5, 16, 32]])
    torch.testing.assert_close(offsets[1], torch.zeros(4), atol=1e-5, rtol=0)


def test_zero_offsets_reproduce_the_reference_box() -> None:
    reference = torch.tensor([[0.5, 0.4, 0.2, 0.3], [0.1, 0.9, 0.05, 0.1]])
    torch.testing.assert_close(distance_to_box_cxcywh(reference, torch.zeros(2, 4), 4.0), reference)


def test_encoding_then_decoding_a_target_box_gives_it_back() -> None:
    generator = torch.Generator().manual_seed(0)
    reference = torch.tensor([[0.5, 0.5, 0.3, 0.3]]).repeat(16, 1)
    jitter = (torch.rand(16, 4, generator=generator) - 0.5) * 0.15  # within the bins' range
    targets_xyxy = box_cxcywh_to_xyxy(reference) + jitter
    index, weight_right, weight_left = box_to_distance(reference, targets_xyxy, REG_MAX, 4.0, UP)
    bins = weighting_function(REG_MAX, UP, 4.0)
    left = index.floor().long()
    offsets = bins[left] * weight_left + bins[left + 1] * weight_right  # [N * 4]
    decoded = distance_to_box_cxcywh(reference, offsets.reshape(16, 4), 4.0)
    torch.testing.assert_close(box_cxcywh_to_xyxy(decoded), targets_xyxy, atol=1e-5, rtol=0)
    torch.testing.assert_close(weight_left + weight_right, torch.ones_like(weight_left))


def test_edges_beyond_the_end_bins_put_all_weight_on_them() -> None:
    reference = torch.tensor([[0.5, 0.5, 0.1, 0.1]])
    # left edge far out (beyond the last bin), right edge left of the centre (below the first)
    target = torch.tensor([[-5.0, 0.45, 0.2, 0.55]])
    index, weight_right, weight_left = box_to_distance(reference, target, REG_MAX, 4.0, UP)
    assert index[0].item() == pytest.approx(REG_MAX - 0.1) and weight_right[0] == 1.0
    assert index[2].item() == pytest.approx(0.0) and weight_left[2] == 1.0
    assert (index <= REG_MAX - 0.1 + 1e-6).all() and not index.requires_grad
