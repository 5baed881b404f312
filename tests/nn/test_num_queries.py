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
    with pytest.raises(ModelSpecError, match="num_queries must be"):
        build_model("n", 1, "detect", (256, 256), num_queries=301)
