"""Box-restricted mask losses: targets, regions, ordering of good and bad masks, invariances."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from dfseg.training.criterion.masks import (
    box_region_weights,
    box_restricted_mask_losses,
    downsample_masks,
    pairwise_mask_costs,
    prepare_mask_targets,
)

SIZE = 16  # mask-feature resolution of a 64 x 64 input


def test_area_downsampling_keeps_thin_structures_as_soft_targets() -> None:
    mask = torch.zeros(1, 64, 64, dtype=torch.uint8)
    mask[0, :, 10] = 1  # a 1-pixel line: a quarter of each 4x4 cell it crosses
    mask[0, 40:48, 40:48] = 255  # any non-zero value is foreground
    soft = downsample_masks(mask, (SIZE, SIZE))[0]
    assert soft.dtype == torch.float32
    torch.testing.assert_close(soft[:, 2], torch.full((SIZE,), 0.25))
    assert soft[10:12, 10:12].eq(1.0).all()
    assert soft.sum().item() == pytest.approx(mask.bool().sum().item() / 16)


def test_downsampling_no_masks_gives_an_empty_tensor() -> None:
    soft = downsample_masks(torch.zeros(0, 64, 64, dtype=torch.bool), (SIZE, SIZE))
    assert soft.shape == (0, SIZE, SIZE)


def _rectangle(rows: slice, cols: slice) -> Tensor:
    region = torch.zeros(SIZE, SIZE)
    region[rows, cols] = 1
    return region


def test_box_regions_cover_the_overlapping_pixels() -> None:
    pixel = 1 / SIZE
    boxes = torch.tensor(
        [
            [0.5, 0.5, 0.5, 0.25],  # x 4..12, y 6..10 in feature pixels
            [8.5 * pixel, 8.5 * pixel, 0.001, 0.001],  # tiny, inside pixel (8, 8)
            [0.3, 0.3, 0.0, 0.2],  # zero width at x 4.8: widened to 4.3..5.3
            [0.0, 0.5, 0.2, 0.2],  # x -1.6..1.6: clipped by the left border
            [1.5, 0.5, 0.2, 0.2],  # entirely outside
        ]
    )
    regions = box_region_weights(boxes, (SIZE, SIZE))
    assert regions.shape == (5, SIZE, SIZE)
    assert torch.equal(regions[0], _rectangle(slice(6, 10), slice(4, 12)))
    assert torch.equal(regions[1], _rectangle(slice(8, 9), slice(8, 9)))
    assert torch.equal(regions[2], _rectangle(slice(3, 7), slice(4, 6)))
    assert torch.equal(regions[3], _rectangle(slice(6, 10), slice(0, 2)))
    assert regions[4].sum() == 0


def _single_object(box: list[float]) -> tuple[dict[str, Tensor], Tensor]:
    """One target whose mask is the left half of its box, and its region at SIZE."""
    boxes = torch.tensor([box])
    region = box_region_weights(boxes, (SIZE, SIZE))[0]
    cols = torch.nonzero(region.sum(0)).flatten()
    half = torch.zeros(SIZE, SIZE)
    half[:, cols[0] : cols[0] + max(len(cols) // 2, 1)] = 1
    mask = (half * region).repeat_interleave(4, 0).repeat_interleave(4, 1) > 0
    return {
        "labels": torch.zeros(1, dtype=torch.int64),
        "boxes": boxes,
        "masks": mask[None],
    }, region


def _losses_for_logits(logits: Tensor, target: dict[str, Tensor]) -> dict[str, Tensor]:
    """Feed fixed per-pixel logits [h, w] through a 1-D embedding and feature map."""
    features = logits[None, None]  # [B=1, D=1, h, w]
    embeds = torch.ones(1, 3, 1)  # [B=1, Q=3, D=1]
    targets = prepare_mask_targets([target], (SIZE, SIZE), torch.device("cpu"))
    matches = [(torch.tensor([2]), torch.tensor([0]))]
    return box_restricted_mask_losses(embeds, features, matches, targets, num_boxes=1.0)


def test_a_perfect_mask_scores_better_than_a_wrong_one() -> None:
    target, _ = _single_object([0.5, 0.5, 0.5, 0.5])
    soft = downsample_masks(target["masks"], (SIZE, SIZE))[0]
    perfect = _losses_for_logits((soft * 2 - 1) * 12, target)
    inverted = _losses_for_logits((1 - 2 * soft) * 12, target)
    unsure = _losses_for_logits(torch.zeros(SIZE, SIZE), target)
    for name in ("loss_mask_bce", "loss_mask_dice"):
        assert perfect[name] < unsure[name] < inverted[name]
    assert perfect["loss_mask_bce"] < 1e-3 and perfect["loss_mask_dice"] < 1e-3


@pytest.mark.parametrize("box", [[0.5, 0.5, 0.5, 0.5], [0.1, 0.9, 0.2, 0.2], [0.4, 0.4, 0.01, 0.3]])
def test_pixels_outside_the_box_do_not_matter(box: list[float]) -> None:
    target, region = _single_object(box)
    logits = torch.randn(SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    changed_outside = torch.where(region > 0, logits, torch.full_like(logits, 30.0))
    changed_inside = torch.where(region > 0, logits + 1.0, logits)
    reference = _losses_for_logits(logits, target)
    outside = _losses_for_logits(changed_outside, target)
    inside = _losses_for_logits(changed_inside, target)
    for name in reference:
        assert torch.equal(reference[name], outside[name])
        assert not torch.equal(reference[name], inside[name])


def test_gradients_reach_only_matched_queries_and_in_box_pixels() -> None:
    target, region = _single_object([0.5, 0.5, 0.5, 0.5])
    features = torch.randn(1, 4, SIZE, SIZE, requires_grad=True)
    embeds = torch.randn(1, 5, 4, requires_grad=True)
    targets = prepare_mask_targets([target], (SIZE, SIZE), torch.device("cpu"))
    matches = [(torch.tensor([3]), torch.tensor([0]))]
    losses = box_restricted_mask_losses(embeds, features, matches, targets, num_boxes=1.0)
    (losses["loss_mask_bce"] + losses["loss_mask_dice"]).backward()
    assert embeds.grad is not None and features.grad is not None
    assert embeds.grad[0, 3].abs().sum() > 0
    assert embeds.grad[0, [0, 1, 2, 4]].abs().sum() == 0
    assert features.grad[0, :, region == 0].abs().sum() == 0


def test_no_matches_give_a_connected_exact_zero() -> None:
    features = torch.randn(2, 4, SIZE, SIZE, requires_grad=True)
    embeds = torch.randn(2, 5, 4, requires_grad=True)
    empty_target = {"boxes": torch.zeros(0, 4), "masks": torch.zeros(0, 64, 64, dtype=torch.bool)}
    targets = prepare_mask_targets([empty_target, empty_target], (SIZE, SIZE), torch.device("cpu"))
    none = (torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int64))
    losses = box_restricted_mask_losses(embeds, features, [none, none], targets, num_boxes=1.0)
    total = losses["loss_mask_bce"] + losses["loss_mask_dice"]
    assert total.item() == 0.0
    total.backward()
    assert embeds.grad is not None and torch.equal(embeds.grad, torch.zeros_like(embeds))


def test_normaliser_divides_the_sum_over_matches() -> None:
    target, _ = _single_object([0.5, 0.5, 0.5, 0.5])
    features = torch.randn(1, 4, SIZE, SIZE)
    embeds = torch.randn(1, 2, 4)
    targets = prepare_mask_targets([target], (SIZE, SIZE), torch.device("cpu"))
    one = [(torch.tensor([0]), torch.tensor([0]))]
    twice = [(torch.tensor([0, 0]), torch.tensor([0, 0]))]
    single = box_restricted_mask_losses(embeds, features, one, targets, num_boxes=1.0)
    doubled = box_restricted_mask_losses(embeds, features, twice, targets, num_boxes=2.0)
    for name in single:
        torch.testing.assert_close(single[name], doubled[name])


def test_pairwise_costs_rank_the_matching_query_first() -> None:
    target, _ = _single_object([0.5, 0.5, 0.5, 0.5])
    soft = downsample_masks(target["masks"], (SIZE, SIZE))
    features = torch.stack([soft[0] * 2 - 1, torch.ones(SIZE, SIZE)])  # [2, h, w]
    embeds = torch.tensor([[-8.0, 0.0], [8.0, 0.0], [0.0, 8.0]])  # inverted, right, all-on
    points = torch.rand(256, 2, generator=torch.Generator().manual_seed(0))
    bce, dice = pairwise_mask_costs(embeds, features, soft, target["boxes"], points)
    assert bce.shape == dice.shape == (3, 1)
    assert bce.argmin().item() == 1 and dice.argmin().item() == 1
    assert bce[0, 0] > bce[2, 0] and dice[0, 0] > dice[2, 0]


def test_box_only_instances_are_left_out_of_the_mask_loss() -> None:
    torch.manual_seed(0)
    masked, _ = _single_object([0.3, 0.3, 0.3, 0.3])
    boxed, _ = _single_object([0.7, 0.7, 0.3, 0.3])
    both = {key: torch.cat([masked[key], boxed[key]]) for key in masked}
    embeds = torch.randn(1, 4, 8, requires_grad=True)  # [B, Q, D]
    features = torch.randn(1, 8, SIZE, SIZE)
    matches = [(torch.tensor([0, 2]), torch.tensor([0, 1]))]
    only_first = [(torch.tensor([0]), torch.tensor([0]))]
    reference = box_restricted_mask_losses(
        embeds, features, only_first, prepare_mask_targets([masked], (SIZE, SIZE), "cpu"), 1.0
    )
    mixed = dict(both, has_mask=torch.tensor([True, False]))
    losses = box_restricted_mask_losses(
        embeds, features, matches, prepare_mask_targets([mixed], (SIZE, SIZE), "cpu"), 2.0
    )
    # the box-only match adds nothing, and the normaliser counts the one masked match
    for name in ("loss_mask_bce", "loss_mask_dice"):
        torch.testing.assert_close(losses[name], reference[name])
    losses["loss_mask_bce"].backward()
    assert embeds.grad is not None and embeds.grad[0, 2].abs().sum() == 0  # no gradient to it
    assert embeds.grad[0, 0].abs().sum() > 0
    every = box_restricted_mask_losses(
        embeds, features, matches, prepare_mask_targets([both], (SIZE, SIZE), "cpu"), 2.0
    )
    assert not torch.allclose(every["loss_mask_bce"], losses["loss_mask_bce"])
