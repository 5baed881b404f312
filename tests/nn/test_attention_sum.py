"""`DFine.set_attention_sum("levels")`: deformable attention summed per level instead of over the
concatenated samples gives the same values, for points inside and far outside the maps."""

from __future__ import annotations

import pytest
import torch

from dfseg.nn import build_model
from dfseg.nn.deformable_attention import MSDeformableAttention, split_value_levels
from dfseg.nn.model import ModelSpecError


@pytest.mark.parametrize(
    ("points", "shapes"),
    [((6, 6), [(10, 10), (5, 5)]), ((3, 6, 3), [(16, 12), (8, 6), (4, 3)])],
)
def test_levels_sum_equals_the_concatenated_sum(
    points: tuple[int, ...], shapes: list[tuple[int, int]]
) -> None:
    torch.manual_seed(0)
    attention = MSDeformableAttention(64, 8, points).eval()
    torch.nn.init.normal_(attention.sampling_offsets.weight, std=2.0)  # many points off the map
    torch.nn.init.normal_(attention.attention_weights.weight, std=0.5)
    memory = torch.randn(2, sum(h * w for h, w in shapes), 64)
    query, boxes = torch.randn(2, 30, 64), torch.rand(2, 30, 1, 4)
    levels = split_value_levels(memory, shapes, 8)
    with torch.no_grad():
        expected = attention(query, boxes, levels)
        attention.attention_sum = "levels"
        summed = attention(query, boxes, levels)
    assert expected.abs().mean() > 0.01
    torch.testing.assert_close(summed, expected, rtol=0, atol=1e-5)


def test_model_attention_sum_switch_reaches_every_layer_and_keeps_outputs() -> None:
    torch.manual_seed(0)
    model = build_model("n", 3, image_size=(128, 128), num_queries=20).eval()
    images = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        expected = model(images)
        model.set_attention_sum("levels")
        summed = model(images)
    modes = {m.attention_sum for m in model.modules() if isinstance(m, MSDeformableAttention)}
    assert modes == {"levels"}
    torch.testing.assert_close(summed["pred_logits"], expected["pred_logits"], rtol=0, atol=1e-4)
    torch.testing.assert_close(summed["pred_boxes"], expected["pred_boxes"], rtol=0, atol=1e-5)
    with pytest.raises(ModelSpecError, match="attention_sum must be one of"):
        model.set_attention_sum("mean")
