"""The semantic criterion on hand-computed cases, and class-index maps from region masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dfseg.ops.semantic import index_map_from_masks, index_map_from_masks_np
from dfseg.training.criterion.semantic import SemanticCriterion


def _target(index_map: torch.Tensor, num_classes: int) -> dict[str, torch.Tensor]:
    """The per-class region masks of an [H, W] index map (255 left uncovered)."""
    labels = torch.tensor([c for c in range(num_classes) if (index_map == c).any()]).long()
    masks = torch.stack([(index_map == c).to(torch.uint8) for c in labels.tolist()])
    return {"masks": masks, "labels": labels}


def _losses(
    criterion: SemanticCriterion, logits: torch.Tensor, *index_maps: torch.Tensor
) -> dict[str, torch.Tensor]:
    targets = [_target(m, criterion.num_classes) for m in index_maps]
    return criterion({"semantic_logits": logits}, targets)


def test_index_map_last_region_wins_and_uncovered_is_ignored() -> None:
    masks = torch.zeros(2, 3, 4, dtype=torch.uint8)
    masks[0, :2, :2] = 1
    masks[1, 1:, 1:3] = 1
    labels = torch.tensor([4, 7])
    got = index_map_from_masks(masks, labels)
    expected = torch.tensor([[4, 4, 255, 255], [4, 7, 7, 255], [255, 7, 7, 255]])
    assert got.dtype == torch.int64 and torch.equal(got, expected)
    assert torch.equal(index_map_from_masks(masks.bool(), labels), expected)
    swapped = index_map_from_masks(masks.flip(0), labels.flip(0))
    assert swapped[1, 1] == 4  # now region 4 comes last
    as_numpy = index_map_from_masks_np(masks.numpy(), labels.numpy())
    assert as_numpy.dtype == np.uint8 and np.array_equal(as_numpy, expected.numpy())
    wide = index_map_from_masks_np(masks.numpy(), np.array([4, 300]))
    assert wide.dtype == np.int64 and wide[2, 1] == 300


def test_index_map_without_regions_is_all_ignored() -> None:
    empty = index_map_from_masks(torch.zeros(0, 2, 3, dtype=torch.uint8), torch.zeros(0).long())
    assert torch.equal(empty, torch.full((2, 3), 255))
    empty_np = index_map_from_masks_np(np.zeros((0, 2, 3), np.uint8), np.zeros(0, np.int64), 9)
    assert np.array_equal(empty_np, np.full((2, 3), 9))
    with pytest.raises(ValueError, match="labels"):
        index_map_from_masks(torch.zeros(2, 2, 2, dtype=torch.uint8), torch.zeros(1).long())


def test_cross_entropy_equals_torch_and_ignores_unlabelled_pixels() -> None:
    torch.manual_seed(0)
    index_map = torch.randint(0, 3, (6, 5))
    index_map[0, :] = 255
    logits = torch.randn(1, 3, 6, 5)
    criterion = SemanticCriterion(3)
    loss = _losses(criterion, logits, index_map)
    assert set(loss) == {"loss_sem_ce"}
    torch.testing.assert_close(
        loss["loss_sem_ce"], F.cross_entropy(logits, index_map[None], ignore_index=255)
    )
    changed = logits.clone()
    changed[..., 0, :] = 100.0  # the ignored row
    torch.testing.assert_close(
        _losses(criterion, changed, index_map)["loss_sem_ce"], loss["loss_sem_ce"]
    )
    doubled = _losses(SemanticCriterion(3, ce_weight=2.0), logits, index_map)["loss_sem_ce"]
    torch.testing.assert_close(doubled, 2 * loss["loss_sem_ce"])


def test_logits_are_resized_to_the_targets() -> None:
    torch.manual_seed(2)
    index_map = torch.randint(0, 2, (8, 12))
    logits = torch.randn(1, 2, 4, 6)
    upsampled = F.interpolate(logits, size=(8, 12), mode="bilinear", align_corners=False)
    loss = _losses(SemanticCriterion(2), logits, index_map)["loss_sem_ce"]
    torch.testing.assert_close(loss, F.cross_entropy(upsampled, index_map[None]))


def test_class_weights_and_ohem() -> None:
    torch.manual_seed(1)
    index_maps = torch.randint(0, 3, (2, 8, 8))
    logits = torch.randn(2, 3, 8, 8)
    weights = torch.tensor([1.0, 2.0, 0.5])
    weighted = _losses(SemanticCriterion(3, class_weights=weights.tolist()), logits, *index_maps)
    expected = F.cross_entropy(logits, index_maps, weight=weights)
    torch.testing.assert_close(weighted["loss_sem_ce"], expected)
    full = _losses(SemanticCriterion(3, ohem_keep=1.0), logits, *index_maps)
    torch.testing.assert_close(full["loss_sem_ce"], F.cross_entropy(logits, index_maps))
    per_pixel = F.cross_entropy(logits, index_maps, reduction="none").flatten()  # [128]
    hardest = per_pixel.sort(descending=True).values[:32].mean()  # 25% of 128 pixels
    quarter = _losses(SemanticCriterion(3, ohem_keep=0.25), logits, *index_maps)
    torch.testing.assert_close(quarter["loss_sem_ce"], hardest)
    both = SemanticCriterion(3, class_weights=weights.tolist(), ohem_keep=1.0)
    torch.testing.assert_close(_losses(both, logits, *index_maps)["loss_sem_ce"], expected)


def test_ohem_keeps_at_least_one_pixel() -> None:
    index_map = torch.tensor([[0, 1], [255, 255]])
    logits = torch.tensor([[[[3.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [0.0, 0.0]]]])
    loss = _losses(SemanticCriterion(2, ohem_keep=0.01), logits, index_map)["loss_sem_ce"]
    per_pixel = F.cross_entropy(logits, index_map[None], ignore_index=255, reduction="none")
    torch.testing.assert_close(loss, per_pixel.max())


def test_dice_is_near_zero_when_right_and_large_when_wrong() -> None:
    index_map = torch.tensor([[0, 1], [2, 1]])
    right = F.one_hot(index_map, 3).permute(2, 0, 1)[None].float() * 40.0  # [1, 3, 2, 2]
    criterion = SemanticCriterion(3, ce_weight=0.0, dice_weight=1.0)
    assert _losses(criterion, right, index_map)["loss_sem_dice"] < 1e-3
    wrong = right.roll(1, dims=1)  # every pixel's mass on another class
    assert _losses(criterion, wrong, index_map)["loss_sem_dice"] > 0.5


def test_all_ignored_gives_zero_with_a_graph() -> None:
    logits = torch.randn(2, 2, 3, 3, requires_grad=True)
    nothing = {"masks": torch.zeros(0, 3, 3, dtype=torch.uint8), "labels": torch.zeros(0).long()}
    criterion = SemanticCriterion(2, dice_weight=1.0, ohem_keep=0.5)
    loss = criterion({"semantic_logits": logits}, [nothing, nothing])
    assert set(loss) == {"loss_sem_ce", "loss_sem_dice"}
    assert all(value.item() == 0.0 for value in loss.values())
    sum(loss.values()).backward()
    assert logits.grad is not None and torch.equal(logits.grad, torch.zeros_like(logits))


@pytest.mark.parametrize("dice_weight", [0.0, 1.0])
def test_raising_the_right_class_lowers_the_loss(dice_weight: float) -> None:
    index_map = torch.tensor([[0, 1, 1], [0, 0, 1]])
    base = torch.zeros(1, 2, 2, 3, requires_grad=True)
    criterion = SemanticCriterion(2, dice_weight=dice_weight)
    sum(_losses(criterion, base, index_map).values()).backward()  # type: ignore[union-attr]
    assert base.grad is not None
    right_class = F.one_hot(index_map, 2).permute(2, 0, 1)[None].bool()  # [1, 2, 2, 3]
    assert (base.grad[right_class] < 0).all() and (base.grad[~right_class] > 0).all()


def test_bf16_logits_under_autocast_give_a_float32_loss() -> None:
    torch.manual_seed(3)
    index_map = torch.tensor([[0, 1], [1, 0]])
    logits = torch.randn(1, 2, 2, 2)
    criterion = SemanticCriterion(2, dice_weight=1.0, ohem_keep=0.5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = _losses(criterion, logits.to(torch.bfloat16), index_map)
    assert all(value.dtype == torch.float32 for value in loss.values())
    reference = _losses(criterion, logits.to(torch.bfloat16).float(), index_map)
    for name, value in loss.items():
        torch.testing.assert_close(value, reference[name])


def test_bad_settings_and_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="class_weights"):
        SemanticCriterion(3, class_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="class_weights"):
        SemanticCriterion(2, class_weights=[1.0, -2.0])
    for keep in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="ohem_keep"):
            SemanticCriterion(3, ohem_keep=keep)
    with pytest.raises(ValueError, match="weights must be >= 0"):
        SemanticCriterion(3, dice_weight=-1.0)
    with pytest.raises(ValueError, match="semantic_logits"):
        _losses(SemanticCriterion(3), torch.zeros(1, 2, 2, 2), torch.zeros(2, 2).long())
