"""`train.query_groups` (Group DETR): extra training-only query groups beside D-FINE's own."""

from __future__ import annotations

import pytest
import torch

from dfseg.nn import build_model
from dfseg.nn.dfine_decoder import QUERY_GROUP_PREFIX, query_group_mask, saved_query_groups
from dfseg.nn.model import DFine
from dfseg.training.criterion import build_criterion

SIZE = 256


def _targets() -> list[dict[str, torch.Tensor]]:
    masks = torch.zeros(2, SIZE, SIZE, dtype=torch.uint8)
    masks[0, 40:90, 40:90] = 1
    masks[1, 120:200, 100:180] = 1
    return [
        {
            "labels": torch.tensor([0, 1]),
            "boxes": torch.tensor([[0.25, 0.25, 0.2, 0.2], [0.55, 0.62, 0.3, 0.3]]),
            "masks": masks,
        },
        {
            "labels": torch.tensor([2]),
            "boxes": torch.tensor([[0.5, 0.5, 0.4, 0.4]]),
            "masks": torch.ones(1, SIZE, SIZE, dtype=torch.uint8),
        },
    ]


def _copy_main_heads(model: DFine) -> None:
    """Give every extra group the decoder's own two-stage heads: groups then select alike."""
    decoder = model.decoder
    for heads in decoder.query_group_heads:
        heads.enc_output.load_state_dict(decoder.enc_output.state_dict())
        heads.enc_score_head.load_state_dict(decoder.enc_score_head.state_dict())
        heads.enc_bbox_head.load_state_dict(decoder.enc_bbox_head.state_dict())


@pytest.fixture
def model() -> DFine:
    torch.manual_seed(0)
    built = build_model("n", 3, "segment", (SIZE, SIZE))
    assert isinstance(built, DFine)
    return built.train()


def test_the_first_group_trains_exactly_as_without_groups(model: DFine) -> None:
    """Groups never see each other and denoising sees only the first group, so the first group
    and the denoising queries give what a single-set model gives; with every group selecting
    alike, the group-averaged loss equals the single-set loss term by term."""
    images, targets = torch.rand(2, 3, SIZE, SIZE), _targets()
    criterion = build_criterion(3, "segment", use_mal=True)
    torch.manual_seed(1)  # the denoising noise
    single = model(images, targets)
    single_losses = criterion(single, targets)
    model.decoder.set_query_groups(3)
    _copy_main_heads(model)
    torch.manual_seed(1)
    grouped = model(images, targets)
    assert len(grouped["group_outputs"]) == 2
    torch.testing.assert_close(grouped["pred_logits"], single["pred_logits"])
    torch.testing.assert_close(grouped["pred_mask_embeds"], single["pred_mask_embeds"])
    torch.testing.assert_close(
        grouped["dn_outputs"][-1]["pred_boxes"], single["dn_outputs"][-1]["pred_boxes"]
    )
    for group in grouped["group_outputs"]:
        assert "dn_outputs" not in group
        torch.testing.assert_close(group["pred_boxes"], single["pred_boxes"])
        assert group["pred_mask_embeds"].shape == single["pred_mask_embeds"].shape
    grouped_losses = criterion(grouped, targets)
    assert set(grouped_losses) == set(single_losses)
    for term, value in single_losses.items():
        torch.testing.assert_close(grouped_losses[term], value, msg=term)


def test_fresh_groups_select_their_own_queries_and_add_their_own_losses(model: DFine) -> None:
    images, targets = torch.rand(2, 3, SIZE, SIZE), _targets()
    criterion = build_criterion(3, "segment", use_mal=True)
    model.decoder.set_query_groups(2)
    torch.manual_seed(1)
    outputs = model(images, targets)
    group = outputs["group_outputs"][0]
    assert not torch.allclose(group["pred_boxes"], outputs["pred_boxes"])
    losses = criterion(outputs, targets)
    alone = criterion({k: v for k, v in outputs.items() if k != "group_outputs"}, targets)
    other = criterion(group, targets)
    for term in ("loss_mal", "loss_bbox_aux_0", "loss_mask_dice"):
        torch.testing.assert_close(losses[term], (alone[term] + other[term]) / 2)
    torch.testing.assert_close(losses["loss_mal_dn_0"], alone["loss_mal_dn_0"])
    sum(losses.values()).backward()
    heads = model.decoder.query_group_heads[0]
    assert heads.enc_score_head.weight.grad is not None
    assert heads.enc_score_head.weight.grad.abs().sum() > 0


def test_groups_leave_inference_and_the_official_keys_alone(model: DFine) -> None:
    plain_keys = set(model.state_dict())
    assert not any(key.startswith(QUERY_GROUP_PREFIX) for key in plain_keys)
    images = torch.rand(1, 3, SIZE, SIZE)
    model.eval()
    before = model(images)
    model.decoder.set_query_groups(4)
    grouped_keys = set(model.state_dict())
    assert saved_query_groups(model.state_dict()) == 4  # what a resumed run goes on with
    assert saved_query_groups({key: None for key in plain_keys}) == 1
    assert {k for k in grouped_keys - plain_keys if not k.startswith(QUERY_GROUP_PREFIX)} == set()
    after = model(images)
    torch.testing.assert_close(after["pred_logits"], before["pred_logits"])
    model.deploy()  # an export's model: the extra heads are dropped
    assert not any(key.startswith(QUERY_GROUP_PREFIX) for key in model.state_dict())
    assert model.decoder.query_groups == 1


def test_group_mask_blocks_other_groups_and_keeps_denoising_on_the_first() -> None:
    denoising = torch.zeros(4 + 3, 4 + 3, dtype=torch.bool)
    denoising[:2, 2:4] = denoising[2:4, :2] = True  # two denoising groups of two
    denoising[4:, :4] = True  # matching queries never see denoising ones
    mask = query_group_mask(denoising, 4, 3, 2, torch.device("cpu"))
    assert mask.shape == (10, 10)
    assert torch.equal(mask[:7, :7], denoising)
    assert mask[:4, 7:].all()  # denoising never sees the second group
    assert mask[7:, :7].all() and not mask[7:, 7:].any()  # the second group sees only itself
    plain = query_group_mask(None, 0, 3, 3, torch.device("cpu"))
    assert torch.equal(plain, torch.block_diag(*[torch.ones(3, 3)] * 3) == 0)


def test_query_groups_must_be_positive(model: DFine) -> None:
    with pytest.raises(ValueError, match=">= 1"):
        model.decoder.set_query_groups(0)
