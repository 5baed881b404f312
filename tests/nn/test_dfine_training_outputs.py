"""Training-mode output dicts: the official structure, denoising, multiscale, segmentation."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from dfine_test_helpers import reference_input

from dfseg.nn import build_model
from dfseg.nn.checkpoint import load_checkpoint


def _targets() -> list[dict[str, torch.Tensor]]:
    return [
        {
            "labels": torch.tensor([1, 2]),
            "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.3], [0.3, 0.3, 0.1, 0.1]]),
        },
        {"labels": torch.tensor([0]), "boxes": torch.tensor([[0.6, 0.4, 0.3, 0.2]])},
    ]


def _compare(
    ours: Any, theirs: Any, path: str, worst: list[float], check_dtype: bool = True
) -> None:
    """Same structure, keys in the same order, same shapes/dtypes; records the worst tensor diff."""
    if isinstance(theirs, dict):
        assert list(ours) == list(theirs), path
        for key in theirs:
            _compare(ours[key], theirs[key], f"{path}.{key}", worst, check_dtype)
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs), path
        for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            _compare(a, b, f"{path}[{index}]", worst, check_dtype)
    elif isinstance(theirs, torch.Tensor):
        assert ours.shape == theirs.shape, path
        assert ours.dtype == theirs.dtype or not check_dtype, path
        if ours.numel():
            worst.append(float((ours.detach().double() - theirs.double()).abs().max()))
    else:
        assert ours == theirs, path


MATCHING_KEYS = ("pred_logits", "pred_boxes", "pred_corners", "ref_points", "aux_outputs",
                 "enc_aux_outputs", "pre_outputs")  # fmt: skip


def _query_order(ours: dict[str, Any], theirs: dict[str, Any]) -> torch.Tensor:
    """[B, Q]: for each of `theirs`' matching queries, the index of the same query in `ours`.

    Encoder top-k scores can be near-tied, so float rounding may order the same selected anchors
    differently (README of the reference); queries are identified by their encoder proposal
    (box and class logits), which must pair them one to one."""

    def proposals(outputs: dict[str, Any]) -> torch.Tensor:
        encoder = outputs["enc_aux_outputs"][0]
        return torch.cat([encoder["pred_boxes"], encoder["pred_logits"]], -1).detach().double()

    distances = torch.cdist(proposals(theirs), proposals(ours))  # [B, Q_theirs, Q_ours]
    nearest, order = distances.min(-1)
    for image in order:
        assert len(set(image.tolist())) == image.numel(), "queries do not pair one to one"
    assert float(nearest.max()) < 1e-2
    return order


def _reorder(value: Any, order: torch.Tensor) -> Any:
    if isinstance(value, dict):
        return {k: _reorder(v, order) for k, v in value.items()}
    if isinstance(value, list):
        return [_reorder(v, order) for v in value]
    if isinstance(value, torch.Tensor) and value.dim() >= 2:
        return torch.stack([v[o] for v, o in zip(value, order, strict=True)])
    return value


def _aligned(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """`ours` with its matching queries in `theirs`' order (denoising queries keep theirs)."""
    order = _query_order(ours, theirs)
    return {k: _reorder(v, order) if k in MATCHING_KEYS else v for k, v in ours.items()}


def _training_noise(model: torch.nn.Module, images: torch.Tensor) -> float:
    """Largest float32-vs-float64 difference of the matching queries' training outputs on this
    machine (no denoising: no random draws): the rounding noise the perturbed weights amplify,
    which depends on the CPU's kernels (see `dfine_test_helpers.float32_noise`)."""
    double = copy.deepcopy(model).double()
    with torch.no_grad():
        single_out = model(images)
        double_out = double(images.double())
    worst: list[float] = []
    _compare(_aligned(single_out, double_out), double_out, "noise", worst, check_dtype=False)
    return max(worst)


@pytest.mark.shared
def test_training_dict_reproduces_official_criterion_case(reference_dir: Path) -> None:
    """Same RNG calls in the same order as the official denoising: the whole dict matches,
    queries aligned, within 5e-4 or twice this machine's float32 noise where that is larger."""
    case = torch.load(reference_dir / "n" / "criterion_case.pt", weights_only=True)
    model = build_model("n", 80)
    load_checkpoint(model, reference_dir / "n" / "checkpoint.pth", strict=True)
    image = reference_input(reference_dir / "n")
    images = torch.cat([image, torch.flip(image, dims=[3])], 0)
    model.train()
    noise = _training_noise(model, images)
    torch.manual_seed(1234)
    outputs = model(images, case["targets"])
    worst: list[float] = []
    _compare(_aligned(outputs, case["outputs"]), case["outputs"], "outputs", worst)
    assert max(worst) < max(5e-4, 2 * noise)


def test_detect_training_dict_has_no_mask_entries() -> None:
    model = build_model("n", 3, image_size=(320, 320)).train()
    outputs = model(torch.rand(2, 3, 320, 320), _targets())
    assert "mask_features" not in outputs and "pred_mask_embeds" not in outputs
    assert outputs["pred_corners"].shape == (2, 300, 132)
    assert len(outputs["aux_outputs"]) == 2 and len(outputs["dn_outputs"]) == 3
    assert outputs["dn_meta"]["dn_num_split"] == [2 * 2 * 50, 300]


def test_segment_training_outputs_carry_mask_embeds_everywhere() -> None:
    model = build_model("s", 3, task="segment", image_size=(320, 320)).train()
    outputs = model(torch.rand(2, 3, 320, 320), _targets())
    num_dn = outputs["dn_meta"]["dn_num_split"][0]
    assert outputs["pred_mask_embeds"].shape == (2, 300, 32)
    assert outputs["mask_features"].shape == (2, 32, 80, 80)
    assert all(aux["pred_mask_embeds"].shape == (2, 300, 32) for aux in outputs["aux_outputs"])
    assert all(dn["pred_mask_embeds"].shape == (2, num_dn, 32) for dn in outputs["dn_outputs"])
    loss = outputs["mask_features"].square().mean() + outputs["pred_mask_embeds"].square().mean()
    loss.backward()
    assert model.mask_head.query_embed.layers[0].weight.grad is not None
    assert model.mask_head.stride4_lateral.conv.weight.grad is not None


@pytest.mark.parametrize("height,width", [(480, 480), (512, 640)])
def test_multiscale_training_generates_anchors_for_the_batch_size(height: int, width: int) -> None:
    model = build_model("n", 3, image_size=(640, 640)).train()
    outputs = model(torch.rand(1, 3, height, width), _targets()[:1])
    assert outputs["pred_boxes"].shape == (1, 300, 4)
    assert model.decoder.anchors.shape == (1, 40 * 40 + 20 * 20, 4)  # cache untouched


def test_images_without_objects_give_empty_denoising_outputs() -> None:
    model = build_model("n", 3, image_size=(320, 320)).train()
    empty = {"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)}
    outputs = model(torch.rand(2, 3, 320, 320), [empty, empty])
    assert outputs["dn_meta"]["dn_num_split"] == [0, 300]
    assert outputs["dn_outputs"][0]["pred_logits"].shape == (2, 0, 3)
