"""Checkpoint loading: formats, fine-tuning to other class counts and input sizes, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dfseg.nn import build_model
from dfseg.nn.anchors import generate_anchors
from dfseg.nn.checkpoint import CheckpointError, load_checkpoint

CLASS_KEYS = {
    "decoder.denoising_class_embed.weight",
    "decoder.enc_score_head.weight",
    "decoder.enc_score_head.bias",
    *(f"decoder.dec_score_head.{i}.{p}" for i in range(3) for p in ("weight", "bias")),
}


@pytest.fixture(scope="module")
def source_state() -> dict[str, torch.Tensor]:
    """An 80-class N state dict with recognisable (non-default) values."""
    torch.manual_seed(3)
    model = build_model("n", 80)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.is_floating_point():
                parameter.add_(torch.randn_like(parameter) * 0.01)
    return model.state_dict()


def test_finetune_to_three_classes_reinitialises_only_class_heads(
    source_state: dict[str, torch.Tensor],
) -> None:
    model = build_model("n", 3)
    report = load_checkpoint(model, {"model": source_state})
    assert set(report.reinitialized) == CLASS_KEYS
    assert set(report.kept) == set(source_state) - CLASS_KEYS - set(report.rebuilt)
    assert report.ignored == []
    state = model.state_dict()
    for key in report.kept:
        assert torch.equal(state[key], source_state[key]), key
    assert state["decoder.denoising_class_embed.weight"].shape == (4, 128)
    with torch.inference_mode():
        outputs = model.eval()(torch.rand(1, 3, 320, 320))
    assert outputs["pred_logits"].shape == (1, 300, 3)


@pytest.mark.parametrize("image_size", [(320, 320), (960, 960), (480, 640)])
def test_other_input_sizes_rebuild_anchors(
    source_state: dict[str, torch.Tensor], image_size: tuple[int, int]
) -> None:
    model = build_model("n", 80, image_size=image_size)
    report = load_checkpoint(model, {"model": source_state})
    assert set(report.rebuilt) == {"decoder.anchors", "decoder.valid_mask"}
    height, width = image_size
    shapes = [(height // 16, width // 16), (height // 32, width // 32)]
    expected_anchors, _ = generate_anchors(shapes)
    assert model.decoder.anchors.shape == (1, sum(h * w for h, w in shapes), 4)
    assert torch.equal(model.decoder.anchors, expected_anchors)
    # Level-0 cell (row 1, column 1) is centred at (1.5 / W, 1.5 / H), side 0.05.
    level0_height, level0_width = shapes[0]
    anchor = torch.sigmoid(model.decoder.anchors[0, level0_width + 1])
    expected = torch.tensor([1.5 / level0_width, 1.5 / level0_height, 0.05, 0.05])
    torch.testing.assert_close(anchor, expected)
    # Cell (0, 0) is valid only if its centre lies inside (0.01, 0.99).
    assert bool(model.decoder.valid_mask[0, 0, 0]) == (
        0.5 / max(level0_height, level0_width) > 0.01
    )
    with torch.inference_mode():
        outputs = model.eval()(torch.rand(1, 3, height, width))
    assert outputs["pred_boxes"].shape == (1, 300, 4)


def test_segment_model_from_detection_checkpoint_reports_fresh_mask_head(
    source_state: dict[str, torch.Tensor],
) -> None:
    model = build_model("n", 80, task="segment")
    report = load_checkpoint(model, {"ema": {"module": source_state}})
    mask_keys = {k for k in model.state_dict() if k.startswith("mask_head.")}
    assert mask_keys and set(report.reinitialized) == mask_keys
    assert report.container == "ema"


def test_detect_model_ignores_mask_head_of_segment_checkpoint() -> None:
    segment_state = build_model("n", 80, task="segment").state_dict()
    report = load_checkpoint(build_model("n", 80), segment_state)
    assert report.container == "state_dict"
    assert report.ignored and all(k.startswith("mask_head.") for k in report.ignored)


def test_strict_rejects_other_class_count(source_state: dict[str, torch.Tensor]) -> None:
    with pytest.raises(CheckpointError, match="strict"):
        load_checkpoint(build_model("n", 3), {"model": source_state}, strict=True)


def test_checkpoint_of_another_size_is_an_error(source_state: dict[str, torch.Tensor]) -> None:
    with pytest.raises(CheckpointError, match="another size"):
        load_checkpoint(build_model("s", 80), {"model": source_state})


def test_missing_keys_are_an_error(source_state: dict[str, torch.Tensor]) -> None:
    partial = {k: v for k, v in source_state.items() if not k.startswith("encoder.")}
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(build_model("n", 80), {"model": partial})


def test_file_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "notes.pth"
    path.write_text("definitely not a checkpoint")
    with pytest.raises(CheckpointError, match="not a loadable PyTorch checkpoint"):
        load_checkpoint(build_model("n", 80), path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(build_model("n", 80), tmp_path / "absent.pth")


def test_container_without_weights(tmp_path: Path) -> None:
    path = tmp_path / "odd.pth"
    torch.save({"epoch": 3, "optimizer": {}}, path)
    with pytest.raises(CheckpointError, match="no weights found"):
        load_checkpoint(build_model("n", 80), path)


def test_deployed_model_refuses_loading(source_state: dict[str, torch.Tensor]) -> None:
    with pytest.raises(CheckpointError, match="before calling deploy"):
        load_checkpoint(build_model("n", 80).deploy(), {"model": source_state})
