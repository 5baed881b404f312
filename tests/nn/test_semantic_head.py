"""The semantic head and model: shapes for every context and non-square inputs, gradients,
official key names, deploy and ONNX export with a dynamic input size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dfseg.nn import build_model
from dfseg.nn.checkpoint import load_checkpoint
from dfseg.nn.model import ModelSpecError
from dfseg.nn.semantic_head import SemanticContext, SemanticHead, adaptive_avg_pool2d_traceable
from dfseg.nn.semantic_model import DFineSemantic

STAGE_CHANNELS = (8, 16, 24, 32)


def _model(size: str = "n", classes: int = 3, context: SemanticContext = "none") -> DFineSemantic:
    torch.manual_seed(0)
    model = build_model(size, classes, "semantic", (64, 96), semantic_context=context)
    assert isinstance(model, DFineSemantic)
    return model


def _conditioned(model: DFineSemantic) -> DFineSemantic:
    """Non-trivial outputs for parity checks (as `dfine_test_helpers.conditioned_model`): batch
    norm statistics from one random batch, variances floored, a wider classifier (the fresh
    one gives ~1e-3 logits, which would make 1e-4 tolerances vacuous). In eval mode."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None
            module.reset_running_stats()
    with torch.no_grad():
        model.train()(torch.rand(2, 3, 64, 96))
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d) and module.running_var is not None:
                module.running_var.clamp_(min=0.3)
        torch.nn.init.normal_(model.semantic_head.classifier.weight, std=1.0)
    return model.eval()


def _fake_inputs(
    strides: tuple[int, ...], height: int = 64, width: int = 96
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    stages = [
        torch.randn(2, channels, height // stride, width // stride)
        for channels, stride in zip(STAGE_CHANNELS, (4, 8, 16, 32), strict=True)
    ]
    levels = [torch.randn(2, 12, height // stride, width // stride) for stride in strides]
    return stages, levels


@pytest.mark.parametrize("strides", [(8, 16, 32), (16, 32)])
@pytest.mark.parametrize("context", ["none", "ppm"])
def test_head_gives_stride4_logits_and_starts_unbiased(
    strides: tuple[int, ...], context: SemanticContext
) -> None:
    head = SemanticHead(5, 12, strides, STAGE_CHANNELS, fuse_dim=16, context=context)
    assert head.uses_backbone_stride8 == (8 not in strides)
    bias = head.classifier.bias
    assert bias is not None and torch.equal(bias, torch.zeros(5))
    assert head.classifier.weight.std() < 0.05
    stages, levels = _fake_inputs(strides)
    assert head.eval()(stages, levels).shape == (2, 5, 16, 24)


def test_head_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="context"):
        SemanticHead(2, 12, (8, 16, 32), STAGE_CHANNELS, context="aspp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="encoder_strides"):
        SemanticHead(2, 12, (4, 8), STAGE_CHANNELS)


@pytest.mark.parametrize(("height", "width"), [(1, 1), (2, 3), (5, 7), (20, 13)])
def test_traceable_pooling_equals_adaptive_average_pooling(height: int, width: int) -> None:
    x = torch.randn(2, 3, height, width)
    for bins in (1, 2, 3, 6):
        expected = F.adaptive_avg_pool2d(x, bins)
        torch.testing.assert_close(adaptive_avg_pool2d_traceable(x, bins), expected)


@pytest.mark.parametrize(
    ("size", "context"), [("n", "none"), ("n", "ppm"), ("s", "none"), ("s", "ppm")]
)
def test_logits_have_one_map_per_class_at_the_input_size(
    size: str, context: SemanticContext
) -> None:
    model = _model(size, 4, context).eval()
    with torch.no_grad():
        logits = model(torch.rand(2, 3, 64, 96))["semantic_logits"]
        other = model(torch.rand(1, 3, 96, 64))["semantic_logits"]
    assert logits.shape == (2, 4, 64, 96)
    assert other.shape == (1, 4, 96, 64)


@pytest.mark.parametrize("context", ["none", "ppm"])
def test_the_loss_reaches_the_backbone_at_batch_one(context: SemanticContext) -> None:
    model = _model(context=context).train()  # batch 1: pooled 1x1 maps must not meet a BN
    model(torch.rand(1, 3, 64, 96))["semantic_logits"].square().mean().backward()
    grads = [p.grad for n, p in model.named_parameters() if n.startswith("backbone.stages")]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_keys_are_official_and_a_detection_checkpoint_starts_the_features() -> None:
    model = _model(classes=5)
    assert [name for name, _ in model.named_children()] == ["backbone", "encoder", "semantic_head"]
    assert not model.has_mask_head and not model.is_deployed
    detector = build_model("n", 2, "detect", (256, 256))
    shared = {k for k in model.state_dict() if not k.startswith("semantic_head.")}
    assert shared <= set(detector.state_dict())  # backbone + encoder as in D-FINE checkpoints
    fresh_head = {k: v.clone() for k, v in model.state_dict().items() if "semantic_head" in k}
    load = load_checkpoint(model, {"model": detector.state_dict()})
    key = "backbone.stem.stem1.conv.weight"
    assert torch.equal(model.state_dict()[key], detector.state_dict()[key])
    assert all(k.startswith("semantic_head.") for k in load.reinitialized)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in fresh_head.items())
    assert any(k.startswith("decoder.") for k in load.ignored)


def test_set_image_size_updates_the_description_and_checks_multiples_of_32() -> None:
    model = _model()
    model.set_image_size((96, 128))
    assert model.description.image_size == (96, 128)
    with pytest.raises(ModelSpecError, match="multiples of 32"):
        model.set_image_size((100, 128))


@pytest.mark.parametrize(("fuse_backbone", "channels_last"), [(False, False), (True, True)])
def test_eval_is_deterministic_and_deploy_keeps_outputs(
    fuse_backbone: bool, channels_last: bool
) -> None:
    model = _conditioned(_model(context="ppm"))
    images = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        first = model(images)["semantic_logits"]
        again = model(images)["semantic_logits"]
        deployed = model.deploy(fuse_backbone, channels_last)(images)["semantic_logits"]
    assert model.is_deployed
    assert torch.equal(first, again)
    assert first.abs().max() > 0.1  # the tolerance below is meaningful
    torch.testing.assert_close(deployed, first, atol=1e-4, rtol=1e-4)


@pytest.mark.export
@pytest.mark.parametrize("context", ["none", "ppm"])
def test_onnx_export_with_a_dynamic_size_matches_torch(
    tmp_path: Path, context: SemanticContext
) -> None:
    ort = pytest.importorskip("onnxruntime")
    model = _conditioned(_model(context=context)).deploy()
    model.set_dynamic_size(True)
    path = tmp_path / "semantic.onnx"
    torch.onnx.export(
        model,
        (torch.rand(1, 3, 64, 96),),
        str(path),
        input_names=["images"],
        output_names=["semantic_logits"],
        dynamic_axes={"images": {2: "height", 3: "width"}},
        opset_version=17,
        dynamo=False,
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for height, width in ((64, 96), (128, 192)):  # the second: 4x6 at stride 32, pooled to 6
        images = torch.rand(1, 3, height, width)
        with torch.no_grad():
            expected = model(images)["semantic_logits"].numpy()
        (got,) = session.run(None, {"images": images.numpy()})
        assert got.shape == (1, 3, height, width) and np.abs(expected).max() > 0.1
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)
