"""`model.num_queries`: fewer decoder queries, the same weights."""

from __future__ import annotations

import pytest
import torch

from dfseg.nn import build_model
from dfseg.nn.build import build_described_model
from dfseg.nn.checkpoint import load_checkpoint
from dfseg.nn.model import ModelSpecError
from dfseg.nn.postprocess import max_detections
from dfseg.nn.trained import InferenceGraph


def test_fewer_queries_share_every_weight_with_the_official_count() -> None:
    torch.manual_seed(0)
    official = build_model("n", 2, "segment", (256, 256))
    few = build_model("n", 2, "segment", (256, 256), num_queries=60)
    assert few.description.num_queries == 60
    report = load_checkpoint(few, {"model": official.state_dict()}, strict=True)
    assert not report.reinitialized
    few.eval()
    outputs = few(torch.rand(1, 3, 256, 256))
    assert outputs["pred_logits"].shape == (1, 60, 2)
    assert outputs["pred_mask_embeds"].shape[1] == 60
    rebuilt = build_described_model(few.description)
    assert rebuilt.decoder.num_queries == 60


def test_fewer_queries_allow_smaller_inputs_and_say_what_is_too_small() -> None:
    with pytest.raises(ModelSpecError, match="fewer than the 300 queries"):
        build_model("n", 1, "detect", (160, 160))
    model = build_model("n", 1, "detect", (160, 160), num_queries=100)  # 10x10 + 5x5 anchors
    graph = InferenceGraph(model.eval(), top_k=max_detections(100, 1, "topk"))
    labels, boxes, scores = graph(torch.rand(2, 3, 160, 160))
    assert labels.shape == (2, 100)
    assert scores.shape == (2, 100) and boxes.shape == (2, 100, 4)
    # a K beyond the (query, class) pairs keeps them all instead of failing in top-k
    labels, _, _ = InferenceGraph(model, top_k=300, decode="nms")(torch.rand(1, 3, 160, 160))
    assert labels.shape == (1, 100)
    with pytest.raises(ModelSpecError, match="num_queries must be"):
        build_model("n", 1, "detect", (256, 256), num_queries=301)


def test_limit_decoder_returns_the_chosen_layer_of_the_full_decoder() -> None:
    """Inference limited to L layers gives what layer L of the full decoder predicts (training
    mode returns every layer; no dropout in the decoder, so the two runs see the same values)."""
    torch.manual_seed(0)
    model = build_model("n", 3, "detect", (256, 256))
    features = [torch.rand(1, 128, 256 // s, 256 // s) for s in model.decoder.feat_strides]
    model.decoder.train()
    every_layer = model.decoder(features)
    model.eval()
    model.limit_decoder(num_queries=None, decoder_layers=2)
    assert model.description.decoder_layers == 2
    limited = model.decoder(features)
    assert limited.logits.shape[0] == 1  # only the chosen layer is collected
    torch.testing.assert_close(limited.logits[0], every_layer.logits[1])
    torch.testing.assert_close(limited.boxes[0], every_layer.boxes[1])
    rebuilt = build_described_model(model.description)
    assert rebuilt.decoder.eval_idx == 1


def test_limit_decoder_keeps_the_best_queries_and_refuses_more_than_trained() -> None:
    torch.manual_seed(0)
    model = build_model("n", 3, "detect", (256, 256)).eval()
    images = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        full = model(images, return_enc_topk_ind=True)
        model.limit_decoder(num_queries=50)
        fewer = model(images, return_enc_topk_ind=True)
    assert fewer["pred_logits"].shape == (1, 50, 3)
    # the 50 queries kept are the 50 best-scored anchors of the full selection
    assert torch.equal(fewer["enc_topk_ind"], full["enc_topk_ind"][:, :50])
    with pytest.raises(ModelSpecError, match=r"num_queries must be 1\.\.50"):
        model.limit_decoder(num_queries=60)
    with pytest.raises(ModelSpecError, match=r"decoder_layers must be 1\.\.3"):
        model.limit_decoder(decoder_layers=4)
    model.deploy()
    with pytest.raises(ModelSpecError, match="before deploy"):
        model.limit_decoder(decoder_layers=1)
