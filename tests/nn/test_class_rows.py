"""Fine-tuning keeps the class-head rows of classes the checkpoint shares with the project."""

from __future__ import annotations

from pathlib import Path

import torch

from dfseg.config.coco_classes import COCO_CLASSES, class_rows
from dfseg.nn import build_model
from dfseg.nn.checkpoint import load_checkpoint

HEADS = ("decoder.enc_score_head.weight", "decoder.dec_score_head.2.bias")


def test_names_match_whatever_their_spelling() -> None:
    assert class_rows(["Traffic_Light", "dog", "kangaroo"], list(COCO_CLASSES)) == [9, 16, None]


def test_official_coco_heads_give_their_rows_to_same_named_classes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    official = build_model("n", 80, "detect", (256, 256)).state_dict()
    path = tmp_path / "dfine_n_coco.pth"
    torch.save({"model": official}, path)
    model = build_model("n", 3, "detect", (256, 256))
    report = load_checkpoint(model, path, class_names=["dog", "person", "kangaroo"])
    assert report.mapped_classes == {"dog": 16, "person": 0}
    state = model.state_dict()
    for key in HEADS:
        assert torch.equal(state[key][0], official[key][16]), key
        assert torch.equal(state[key][1], official[key][0]), key
    fresh = state[HEADS[0]][2]  # kangaroo: initialised anew (biases all start at one prior)
    assert not any(torch.equal(fresh, row) for row in official[HEADS[0]])
    embed = "decoder.denoising_class_embed.weight"
    assert torch.equal(state[embed][0], official[embed][16])
    assert torch.equal(state[embed][-1], official[embed][-1])  # the padding row
    plain = build_model("n", 3, "detect", (256, 256))
    assert load_checkpoint(plain, path).mapped_classes == {}  # no names given: nothing mapped


def test_a_dfseg_checkpoint_maps_by_its_manifest_names() -> None:
    torch.manual_seed(1)
    trained = build_model("n", 2, "detect", (256, 256)).state_dict()
    payload = {"model": trained, "manifest": {"class_names": ["cat", "dog"]}}
    model = build_model("n", 3, "detect", (256, 256))
    report = load_checkpoint(model, payload, class_names=["dog", "bird", "cat"])
    assert report.mapped_classes == {"dog": 1, "cat": 0}
    state = model.state_dict()
    for key in HEADS:
        assert torch.equal(state[key][0], trained[key][1]) and torch.equal(
            state[key][2], trained[key][0]
        )
