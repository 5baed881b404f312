"""Criterion on synthetic training outputs: hard targets, finite values and gradients, errors.

The synthetic outputs have the structure of a D-FINE training output dict (final layer, aux layers
with teachers, pre, encoder, denoising layers with `dn_meta`), with every tensor a leaf that needs
a gradient, so a NaN anywhere in the backward pass is caught.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import torch
from torch import Tensor

from dfseg.training.criterion import CriterionInputError, build_criterion

NUM_CLASSES = 3
NUM_BINS = 33  # reg_max 32
MASK_DIM = 8
FEATURE_SIZE = 16  # mask features for a 64 x 64 input


@dataclass
class SyntheticOutputs:
    outputs: dict
    leaves: list[Tensor] = field(default_factory=list)


def _leaf(generator: torch.Generator, *shape: int, scale: float = 1.0) -> Tensor:
    return (torch.randn(*shape, generator=generator) * scale).requires_grad_()


def _layer(g: torch.Generator, batch: int, queries: int, leaves: list, segment: bool) -> dict:
    logits = _leaf(g, batch, queries, NUM_CLASSES)
    box_logits = _leaf(g, batch, queries, 4)
    layer = {"pred_logits": logits, "pred_boxes": box_logits.sigmoid()}
    leaves += [logits, box_logits]
    if segment:
        layer["pred_mask_embeds"] = _leaf(g, batch, queries, MASK_DIM)
        leaves.append(layer["pred_mask_embeds"])
    return layer


def _decoder_layers(
    g: torch.Generator, batch: int, queries: int, count: int, leaves: list, segment: bool
) -> list[dict]:
    """`count` decoder layers sharing reference points; the last one is every layer's teacher."""
    ref_points = torch.rand(batch, queries, 4, generator=g) * 0.5 + 0.25
    layers = []
    for _ in range(count):
        layer = _layer(g, batch, queries, leaves, segment)
        layer["pred_corners"] = _leaf(g, batch, queries, 4 * NUM_BINS)
        layer["ref_points"] = ref_points
        leaves.append(layer["pred_corners"])
        layers.append(layer)
    for layer in layers:
        layer["teacher_corners"] = layers[-1]["pred_corners"]
        layer["teacher_logits"] = layers[-1]["pred_logits"]
    return layers


def _denoising_meta(targets: list[dict], num_denoising: int = 20) -> tuple[dict, int]:
    """dn_meta as the official code builds it: groups of [positives | negatives] per max_gt."""
    max_gt = max(len(t["labels"]) for t in targets)
    groups = max(num_denoising // max_gt, 1)
    positive_idx = tuple(
        torch.cat([g * 2 * max_gt + torch.arange(len(t["labels"])) for g in range(groups)])
        for t in targets
    )
    num_dn_queries = 2 * max_gt * groups
    return {
        "dn_positive_idx": positive_idx,
        "dn_num_group": groups,
        "dn_num_split": [],
    }, num_dn_queries


def make_outputs(
    targets: list[dict], segment: bool, queries: int = 40, seed: int = 0
) -> SyntheticOutputs:
    """A 3-layer D-FINE-like training output dict for `targets` (B = len(targets))."""
    g = torch.Generator().manual_seed(seed)
    batch, leaves = len(targets), []
    layers = _decoder_layers(g, batch, queries, 3, leaves, segment)
    final = {k: v for k, v in layers[-1].items() if not k.startswith("teacher")}
    outputs = {
        **final,
        "up": torch.tensor([0.5]),
        "reg_scale": torch.tensor([4.0]),
        "aux_outputs": layers[:-1],
        "pre_outputs": _layer(g, batch, queries, leaves, segment=False),
        "enc_aux_outputs": [_layer(g, batch, queries, leaves, segment=False)],
        "enc_meta": {"class_agnostic": False},
    }
    if any(len(t["labels"]) for t in targets):  # as in D-FINE, no denoising without objects
        meta, num_dn = _denoising_meta(targets)
        meta["dn_num_split"] = [num_dn, queries]
        outputs["dn_outputs"] = _decoder_layers(g, batch, num_dn, 3, leaves, segment)
        outputs["dn_pre_outputs"] = _layer(g, batch, num_dn, leaves, segment=False)
        outputs["dn_meta"] = meta
    if segment:
        outputs["mask_features"] = _leaf(g, batch, MASK_DIM, FEATURE_SIZE, FEATURE_SIZE)
        leaves.append(outputs["mask_features"])
    return SyntheticOutputs(outputs, leaves)


def _target(boxes: list[list[float]], seed: int = 0) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    box_tensor = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    masks = torch.rand(len(box_tensor), 64, 64, generator=g) > 0.5
    labels = torch.randint(0, NUM_CLASSES, (len(box_tensor),), generator=g)
    return {"labels": labels, "boxes": box_tensor, "masks": masks.to(torch.uint8)}


def _many_boxes(count: int) -> list[list[float]]:
    g = torch.Generator().manual_seed(3)
    centres = torch.rand(count, 2, generator=g) * 0.9 + 0.05
    sizes = torch.rand(count, 2, generator=g) * 0.1 + 0.01
    return torch.cat([centres, sizes], 1).tolist()


HARD_TARGETS = {
    "background_and_objects": [[], [[0.5, 0.5, 0.3, 0.4], [0.2, 0.3, 0.1, 0.1]]],
    "all_background": [[], []],
    "single_tiny_box": [[[0.5, 0.5, 0.002, 0.002]]],
    "boxes_touching_the_border": [
        [[0.05, 0.5, 0.1, 0.3], [0.9, 0.9, 0.2, 0.2], [0.5, 0.5, 1.0, 1.0]]
    ],
    "zero_width_and_zero_area_boxes": [[[0.3, 0.3, 0.0, 0.2], [0.6, 0.6, 0.0, 0.0]]],
    "many_objects": [_many_boxes(120), [[0.5, 0.5, 0.2, 0.2]]],
}


@pytest.mark.parametrize("task", ["detect", "segment"])
@pytest.mark.parametrize("case", sorted(HARD_TARGETS))
def test_hard_targets_give_finite_losses_and_gradients(case: str, task: str) -> None:
    targets = [_target(boxes, seed=i) for i, boxes in enumerate(HARD_TARGETS[case])]
    synthetic = make_outputs(
        targets, segment=task == "segment", queries=150 if case == "many_objects" else 40
    )
    losses = build_criterion(num_classes=NUM_CLASSES, task=task)(synthetic.outputs, targets)
    for name, value in losses.items():
        assert value.dtype == torch.float32 and torch.isfinite(value), name
    total = sum(losses.values())
    assert isinstance(total, Tensor)
    total.backward()
    for leaf in synthetic.leaves:
        assert leaf.grad is None or torch.isfinite(leaf.grad).all()
    assert synthetic.outputs["pred_logits"].grad is not None


def test_degenerate_predicted_boxes_give_finite_gradients() -> None:
    """Zero-size and negative-size predictions (FDR can decode them) on zero-size targets."""
    targets = [_target([[0.3, 0.3, 0.0, 0.2], [0.6, 0.6, 0.0, 0.0]])]
    synthetic = make_outputs(targets, segment=False)
    raw = torch.rand(1, 40, 4)
    raw[0, :, :2] = torch.tensor([0.6, 0.6])
    raw[0, :20, 2:] = 0.0
    raw[0, 20:30, 2] = -0.1
    boxes = raw.requires_grad_()
    synthetic.outputs["pred_boxes"] = boxes
    losses = build_criterion(num_classes=NUM_CLASSES, task="detect")(synthetic.outputs, targets)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert boxes.grad is not None and torch.isfinite(boxes.grad).all()


def test_term_names_follow_the_official_suffix_scheme() -> None:
    targets = [_target([[0.5, 0.5, 0.3, 0.3]]), _target([[0.4, 0.4, 0.2, 0.2]], seed=1)]
    synthetic = make_outputs(targets, segment=True)
    losses = build_criterion(num_classes=NUM_CLASSES, task="segment")(synthetic.outputs, targets)
    detection = {"loss_vfl", "loss_bbox", "loss_giou"}
    local = {"loss_fgl"}
    with_teacher = {"loss_fgl", "loss_ddf"}
    masks = {"loss_mask_bce", "loss_mask_dice"}
    expected = set(detection | local | masks)
    for suffix in ("_aux_0", "_aux_1", "_dn_0", "_dn_1", "_dn_2"):
        expected |= {name + suffix for name in detection | with_teacher | masks}
    for suffix in ("_pre", "_enc_0", "_dn_pre"):
        expected |= {name + suffix for name in detection}
    assert set(losses) == expected


def test_detect_criterion_ignores_mask_outputs() -> None:
    targets = [_target([[0.5, 0.5, 0.3, 0.3]])]
    synthetic = make_outputs(targets, segment=True)
    losses = build_criterion(num_classes=NUM_CLASSES, task="detect")(synthetic.outputs, targets)
    assert not any("mask" in name for name in losses)


def test_no_auxiliary_layers_falls_back_to_the_final_matches() -> None:
    targets = [_target([[0.5, 0.5, 0.3, 0.3]])]
    outputs = make_outputs(targets, segment=False).outputs
    minimal = {
        k: outputs[k]
        for k in ("pred_logits", "pred_boxes", "pred_corners", "ref_points", "up", "reg_scale")
    }
    losses = build_criterion(num_classes=NUM_CLASSES, task="detect")(minimal, targets)
    assert set(losses) == {"loss_vfl", "loss_bbox", "loss_giou", "loss_fgl"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t[0].update(labels=torch.tensor([NUM_CLASSES])), "0-based"),
        (lambda t: t[0].update(boxes=torch.zeros(2, 4)), r"\[1, 4\]"),
        (lambda t: t.append(t[0]), "batch of 1"),
        (lambda t: t[0].pop("masks"), "masks"),
        (
            lambda t: t[0].update(masks=torch.ones(1, 64, 128, dtype=torch.uint8)),
            "input resolution",
        ),
    ],
)
def test_bad_targets_raise_a_specific_error(change, message: str) -> None:
    targets = [_target([[0.5, 0.5, 0.3, 0.3]])]
    outputs = make_outputs(targets, segment=True).outputs
    change(targets)
    with pytest.raises(CriterionInputError, match=message):
        build_criterion(num_classes=NUM_CLASSES, task="segment")(outputs, targets)


def test_segment_criterion_on_detection_outputs_is_an_error() -> None:
    targets = [_target([[0.5, 0.5, 0.3, 0.3]])]
    outputs = make_outputs(targets, segment=False).outputs
    with pytest.raises(CriterionInputError, match="task='detect'"):
        build_criterion(num_classes=NUM_CLASSES, task="segment")(outputs, targets)


def test_denoising_built_for_other_targets_is_an_error() -> None:
    targets = [_target([[0.5, 0.5, 0.3, 0.3], [0.2, 0.2, 0.1, 0.1]])]
    outputs = make_outputs(targets, segment=False).outputs
    with pytest.raises(CriterionInputError, match="dn_positive_idx"):
        build_criterion(num_classes=NUM_CLASSES, task="detect")(
            outputs, [_target([[0.5, 0.5, 0.3, 0.3]])]
        )


def test_unknown_task_is_rejected() -> None:
    with pytest.raises(ValueError, match="task"):
        build_criterion(num_classes=3, task="keypoints")


def test_classification_weight_scales_only_the_classification_terms() -> None:
    from dfseg.training.criterion import build_criterion

    plain = build_criterion(3, "detect")
    heavier = build_criterion(3, "detect", cls_weight=2.5)
    assert heavier.weight_dict["loss_vfl"] == 2.5 * plain.weight_dict["loss_vfl"]
    assert build_criterion(3, "detect", use_mal=True, cls_weight=2.5).weight_dict["loss_mal"] == 2.5
    others = {k: v for k, v in heavier.weight_dict.items() if k not in ("loss_vfl", "loss_mal")}
    assert others == {
        k: v for k, v in plain.weight_dict.items() if k not in ("loss_vfl", "loss_mal")
    }
