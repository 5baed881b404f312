"""Segmentation head: stride-4 mask features for every size, nothing at all for detection."""

from __future__ import annotations

import pytest
import torch

from dfseg.nn import build_model, mask_logits
from dfseg.nn.info import model_info


@pytest.mark.parametrize("size", ["n", "s"])
@pytest.mark.parametrize("height,width", [(320, 320), (256, 384)])
def test_mask_features_at_quarter_resolution(size: str, height: int, width: int) -> None:
    model = build_model(size, 5, task="segment", image_size=(height, width)).eval()
    with torch.inference_mode():
        outputs = model(torch.rand(2, 3, height, width))
    assert outputs["mask_features"].shape == (2, 32, height // 4, width // 4)
    assert outputs["pred_mask_embeds"].shape == (2, 300, 32)
    masks = mask_logits(outputs["pred_mask_embeds"], outputs["mask_features"])
    assert masks.shape == (2, 300, height // 4, width // 4)
    expected = (outputs["pred_mask_embeds"][1, 7, :, None, None] * outputs["mask_features"][1]).sum(
        0
    )
    torch.testing.assert_close(masks[1, 7], expected, rtol=1e-4, atol=1e-4)


def test_n_uses_the_backbone_stride8_stage_and_s_does_not() -> None:
    assert build_model("n", 5, task="segment").mask_head.uses_backbone_stride8
    assert not build_model("s", 5, task="segment").mask_head.uses_backbone_stride8


def test_detect_has_no_mask_parameters_or_outputs() -> None:
    model = build_model("n", 5, image_size=(320, 320)).eval()
    assert not hasattr(model, "mask_head")
    assert not any(key.startswith("mask_head") for key in model.state_dict())
    with torch.inference_mode():
        outputs = model(torch.rand(1, 3, 320, 320))
    assert set(outputs) == {"pred_logits", "pred_boxes"}


def test_mask_head_is_a_small_fraction_of_the_detector() -> None:
    segment = model_info("n", "segment", 80, (320, 320))
    detect = model_info("n", "detect", 80, (320, 320))
    assert segment.parameters_by_part["mask_head"] < 0.05 * detect.parameters
    assert segment.gflops_by_part["mask_head"] < 0.1 * detect.gflops
    assert segment.parameters - detect.parameters == segment.parameters_by_part["mask_head"]


def test_mask_features_depend_on_the_stride4_stage() -> None:
    """The fine stage actually reaches the mask features (a dead branch would not)."""
    model = build_model("n", 5, task="segment", image_size=(320, 320)).eval()
    images = torch.rand(1, 3, 320, 320, requires_grad=True)
    stages = model.backbone(images, all_stages=True)
    stages = [s.detach().requires_grad_(True) for s in stages]
    encoded = model.encoder([stages[i] for i in model.backbone.return_idx])
    features = model.mask_head(stages, encoded)
    features.sum().backward()
    assert stages[0].grad is not None and stages[0].grad.abs().sum() > 0
    assert stages[1].grad is not None and stages[1].grad.abs().sum() > 0
