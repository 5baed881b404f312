"""Hungarian matcher and D-FINE's union ("go") matches: official golden case and properties."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dfseg.training.criterion.masks import box_region_weights
from dfseg.training.criterion.matcher import HungarianMatcher, union_matches


@pytest.fixture(scope="module")
def criterion_case(reference_dir: Path) -> dict:
    return torch.load(
        reference_dir / "n" / "criterion_case.pt", map_location="cpu", weights_only=True
    )


def _assert_same_matches(ours: list, expected: list) -> None:
    assert len(ours) == len(expected)
    for (our_query, our_target), (query, target) in zip(ours, expected, strict=True):
        assert our_query.dtype == torch.int64 and our_target.dtype == torch.int64
        assert our_query.tolist() == query.tolist()
        assert our_target.tolist() == target.tolist()


@pytest.mark.shared
def test_golden_final_and_union_matches(criterion_case: dict) -> None:
    outputs, targets = criterion_case["outputs"], criterion_case["targets"]
    matcher = HungarianMatcher(cost_class=2.0, cost_bbox=5.0, cost_giou=2.0, alpha=0.25, gamma=2.0)
    final = matcher(outputs, targets)
    _assert_same_matches(final, criterion_case["matcher_indices_final"])

    layers = [outputs, *outputs["aux_outputs"], outputs["pre_outputs"], *outputs["enc_aux_outputs"]]
    per_layer = [matcher(layer, targets) for layer in layers]
    _assert_same_matches(union_matches(per_layer), criterion_case["matcher_indices_go"])


def _random_layer(num_queries: int, num_classes: int, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    centres = torch.rand(1, num_queries, 2, generator=generator) * 0.8 + 0.1
    sizes = torch.rand(1, num_queries, 2, generator=generator) * 0.3 + 0.02
    return {
        "pred_logits": torch.randn(1, num_queries, num_classes, generator=generator),
        "pred_boxes": torch.cat([centres, sizes], -1),
    }


def _random_target(num_objects: int, num_classes: int, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    centres = torch.rand(num_objects, 2, generator=generator) * 0.8 + 0.1
    sizes = torch.rand(num_objects, 2, generator=generator) * 0.3 + 0.02
    return {
        "labels": torch.randint(0, num_classes, (num_objects,), generator=generator),
        "boxes": torch.cat([centres, sizes], -1),
    }


@pytest.mark.parametrize(("num_queries", "num_objects"), [(30, 5), (10, 15), (300, 120)])
def test_matches_are_one_to_one_and_sized_min_q_n(num_queries: int, num_objects: int) -> None:
    layer = _random_layer(num_queries, 4, seed=1)
    ((query, target),) = HungarianMatcher()(layer, [_random_target(num_objects, 4, seed=2)])
    expected = min(num_queries, num_objects)
    assert len(query) == len(target) == expected
    assert len(set(query.tolist())) == expected and len(set(target.tolist())) == expected
    assert query.max() < num_queries and target.max() < num_objects


def test_exact_copy_of_a_target_is_matched_to_it() -> None:
    layer = _random_layer(20, 3, seed=3)
    target = _random_target(2, 3, seed=4)
    layer["pred_boxes"][0, 7] = target["boxes"][1]
    layer["pred_logits"][0, 7, target["labels"][1]] = 8.0
    ((query, target_idx),) = HungarianMatcher()(layer, [target])
    assert dict(zip(target_idx.tolist(), query.tolist(), strict=True))[1] == 7


def test_empty_targets_give_empty_int64_matches() -> None:
    layer = _random_layer(12, 3, seed=5)
    empty = {"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)}
    ((query, target),) = HungarianMatcher()(layer, [empty])
    assert query.numel() == 0 and target.numel() == 0
    assert query.dtype == torch.int64 and target.dtype == torch.int64


def test_nan_predictions_still_match() -> None:
    layer = _random_layer(8, 3, seed=6)
    layer["pred_boxes"][0, :4] = float("nan")
    ((query, _),) = HungarianMatcher()(layer, [_random_target(3, 3, seed=7)])
    assert len(query) == 3


def test_all_zero_costs_are_rejected() -> None:
    with pytest.raises(ValueError, match="not all 0"):
        HungarianMatcher(cost_class=0.0, cost_bbox=0.0, cost_giou=0.0)


def _pairs(*pairs: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.tensor([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs]))


def test_union_keeps_each_query_once_with_its_most_frequent_target() -> None:
    layers = [
        [_pairs((5, 0), (9, 1))],
        [_pairs((5, 1), (9, 1))],
        [_pairs((5, 1), (3, 0))],
    ]
    ((query, target),) = union_matches(layers)
    pairs = dict(zip(query.tolist(), target.tolist(), strict=True))
    assert pairs == {5: 1, 9: 1, 3: 0}
    # the pairs seen twice come first (the official visiting order)
    assert set(query[:2].tolist()) == {5, 9}


def test_union_of_empty_matches_is_empty() -> None:
    empty = (torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int64))
    ((query, target),) = union_matches([[empty], [empty]])
    assert query.numel() == 0 and target.numel() == 0


def _two_object_mask_case() -> tuple[dict, dict, torch.Tensor]:
    """Two queries with identical boxes and classes; only their masks tell them apart."""
    size = 16
    box = torch.tensor([[0.5, 0.5, 0.75, 0.75]])
    region = box_region_weights(box, (size, size))[0]  # [h, w]
    left = torch.zeros(size, size)
    left[:, : size // 2] = 1.0
    gt_mask = (left * region).repeat_interleave(4, 0).repeat_interleave(4, 1)  # [64, 64]
    features = torch.stack([left * 2 - 1, 1 - 2 * left])  # [2, h, w]: "left" and "right" channels
    layer = {
        # box and class costs alone slightly prefer query 0
        "pred_logits": torch.tensor([[[0.5], [0.0]]]),
        "pred_boxes": box.expand(1, 2, 4).clone(),
        # query 0 predicts the right half, query 1 the left half
        "pred_mask_embeds": torch.tensor([[[0.0, 6.0], [6.0, 0.0]]]),
    }
    target = {"labels": torch.zeros(1, dtype=torch.int64), "boxes": box, "masks": gt_mask[None] > 0}
    return layer, target, features[None]


@pytest.mark.parametrize(("cost_mask", "cost_dice"), [(2.0, 0.0), (0.0, 2.0), (2.0, 2.0)])
def test_mask_costs_pick_the_query_with_the_right_mask(cost_mask: float, cost_dice: float) -> None:
    layer, target, features = _two_object_mask_case()
    matcher = HungarianMatcher(cost_mask=cost_mask, cost_dice=cost_dice)
    ((query, _),) = matcher(layer, [target], mask_features=features)
    assert query.tolist() == [1]
    # without mask costs the slightly more confident query 0 wins
    ((query, _),) = HungarianMatcher()(layer, [target], mask_features=features)
    assert query.tolist() == [0]


def test_mask_cost_points_do_not_touch_global_rng() -> None:
    layer, target, features = _two_object_mask_case()
    state = torch.random.get_rng_state()
    HungarianMatcher(cost_mask=1.0, cost_dice=1.0)(layer, [target], mask_features=features)
    assert torch.equal(state, torch.random.get_rng_state())
