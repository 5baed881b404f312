"""deploy(): outputs unchanged for randomly initialised n and s models, detection and masks."""

from __future__ import annotations

import pytest
import torch
from dfine_test_helpers import align_by_anchor, conditioned_model


@pytest.mark.parametrize("size", ["n", "s"])
@pytest.mark.parametrize("fast", [False, True], ids=["default", "fuse_backbone+channels_last"])
def test_deploy_leaves_outputs_unchanged(size: str, fast: bool) -> None:
    model = conditioned_model(size, "segment", (320, 320))
    images = torch.rand(2, 3, 320, 320)
    with torch.inference_mode():
        before = model(images, return_enc_topk_ind=True)
        model.deploy(fuse_backbone=fast, channels_last=fast)
        after = model(images, return_enc_topk_ind=True)
    assert model.is_deployed and not model.training
    torch.testing.assert_close(
        after["mask_features"], before["mask_features"], atol=1e-4, rtol=1e-4
    )
    for index in range(2):
        anchors_before, anchors_after = before["enc_topk_ind"][index], after["enc_topk_ind"][index]
        assert set(anchors_before.tolist()) == set(anchors_after.tolist())
        for key in ("pred_logits", "pred_boxes", "pred_mask_embeds"):
            torch.testing.assert_close(
                align_by_anchor(after[key][index], anchors_after),
                align_by_anchor(before[key][index], anchors_before),
                atol=1e-4,
                rtol=1e-4,
            )


def test_deploy_folds_encoder_and_prunes_decoder() -> None:
    model = conditioned_model("n", "detect", (320, 320)).deploy()
    keys = set(model.state_dict())
    assert not any(".cv1.conv.weight" in k for k in keys if k.startswith("encoder."))
    assert any(k.endswith("conv_bn_fused.weight") for k in keys)
    assert (
        "decoder.dec_score_head.0.weight" not in keys and "decoder.dec_score_head.2.weight" in keys
    )
    assert "decoder.project" not in keys  # cached W(n) is not persistent
    with pytest.raises(RuntimeError, match="deployed"):
        model.train()(torch.rand(1, 3, 320, 320))
