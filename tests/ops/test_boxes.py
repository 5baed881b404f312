"""`dfseg.ops.boxes`: format round trips, overlaps on hand-computed cases, empty and degenerate
inputs."""

from __future__ import annotations

import pytest
import torch

from dfseg.ops.boxes import (
    box_area,
    box_cxcywh_to_xyxy,
    box_iou,
    box_xyxy_to_cxcywh,
    elementwise_box_iou,
    generalized_box_iou,
    inverse_sigmoid,
)


def _random_xyxy(count: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    top_left = torch.rand(count, 2, generator=generator) * 50
    size = torch.rand(count, 2, generator=generator) * 30 + 0.5
    return torch.cat([top_left, top_left + size], dim=1)


def test_formats_round_trip_in_any_batch_shape() -> None:
    boxes = _random_xyxy(24).reshape(2, 3, 4, 4)  # [2, 3, 4, 4]: leading dims are kept
    back = box_cxcywh_to_xyxy(box_xyxy_to_cxcywh(boxes))
    assert back.shape == boxes.shape
    torch.testing.assert_close(back, boxes)
    cxcywh = torch.tensor([[10.0, 20.0, 4.0, 6.0]])
    assert box_cxcywh_to_xyxy(cxcywh).tolist() == [[8.0, 17.0, 12.0, 23.0]]


def test_negative_sizes_collapse_to_a_point() -> None:
    assert box_cxcywh_to_xyxy(torch.tensor([[5.0, 5.0, -2.0, 3.0]])).tolist() == [
        [5.0, 3.5, 5.0, 6.5]
    ]


def test_iou_and_union_on_hand_computed_boxes() -> None:
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    b = torch.tensor([[5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0], [0.0, 0.0, 10.0, 10.0]])
    iou, union = box_iou(a, b)
    torch.testing.assert_close(iou, torch.tensor([[50 / 150, 0.0, 1.0]]))
    torch.testing.assert_close(union, torch.tensor([[150.0, 200.0, 100.0]]))
    assert box_area(b).tolist() == [100.0, 100.0, 100.0]


def test_giou_is_iou_minus_the_empty_part_of_the_enclosing_box() -> None:
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    apart = torch.tensor([[20.0, 0.0, 30.0, 10.0]])  # enclosing 30x10, union 200
    torch.testing.assert_close(generalized_box_iou(a, apart), torch.tensor([[0 - 100 / 300]]))
    inside = torch.tensor([[2.0, 2.0, 6.0, 6.0]])  # nested: the enclosing box is the union
    torch.testing.assert_close(generalized_box_iou(a, inside), box_iou(a, inside)[0])
    far = torch.tensor([[1e4, 1e4, 1e4 + 10, 1e4 + 10]])
    assert -1.0 <= generalized_box_iou(a, far).item() < -0.99


def test_pairwise_and_elementwise_agree_and_empty_inputs_keep_shapes() -> None:
    boxes1, boxes2 = _random_xyxy(7, seed=1), _random_xyxy(7, seed=2)
    pairwise, _ = box_iou(boxes1, boxes2)
    torch.testing.assert_close(elementwise_box_iou(boxes1, boxes2), pairwise.diagonal())
    none = torch.zeros(0, 4)
    assert box_iou(none, boxes2)[0].shape == (0, 7)
    assert generalized_box_iou(boxes1, none).shape == (7, 0)


@pytest.mark.parametrize("value", [0.001, 0.2, 0.5, 0.9, 0.999])
def test_inverse_sigmoid_inverts_sigmoid_and_stays_finite_at_the_ends(value: float) -> None:
    x = torch.tensor([value])
    torch.testing.assert_close(torch.sigmoid(inverse_sigmoid(x)), x, rtol=1e-4, atol=1e-6)
    ends = inverse_sigmoid(torch.tensor([-1.0, 0.0, 1.0, 2.0]))
    assert torch.isfinite(ends).all() and ends[0] == ends[1] and ends[2] == ends[3]
