"""build_model arguments, ModelSpec round trip, eval at other sizes."""

from __future__ import annotations

import pytest
import torch

from dfseg.nn import ModelSpec, ModelSpecError, build_model


def test_spec_round_trips_through_plain_types() -> None:
    model = build_model("s", 7, task="segment", image_size=(480, 640))
    spec = model.spec
    assert spec == ModelSpec("s", 7, "segment", (480, 640))
    data = spec.to_dict()
    assert data == {"size": "s", "num_classes": 7, "task": "segment", "image_size": [480, 640]}
    assert ModelSpec.from_dict(data) == spec
    rebuilt = build_model(**{**data, "image_size": tuple(data["image_size"])})
    assert rebuilt.spec == spec


@pytest.mark.parametrize(
    "data,message",
    [
        ({"num_classes": 3}, "missing"),
        ({"size": "n", "num_classes": 3, "task": "pose"}, "task"),
        ({"size": "n", "num_classes": 3, "image_size": [640]}, "height, width"),
    ],
)
def test_spec_from_bad_dict(data: dict, message: str) -> None:
    with pytest.raises(ModelSpecError, match=message):
        ModelSpec.from_dict(data)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"size": "xl", "num_classes": 3}, "unknown D-FINE size"),
        ({"size": "n", "num_classes": 0}, "num_classes"),
        ({"size": "n", "num_classes": 3, "task": "pose"}, "task"),
        ({"size": "n", "num_classes": 3, "image_size": (630, 640)}, "multiples of 32"),
        ({"size": "n", "num_classes": 3, "image_size": (64, 64)}, "fewer than the 300 queries"),
    ],
)
def test_bad_build_arguments_raise_clear_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ModelSpecError, match=message):
        build_model(**kwargs)


def test_eval_at_another_size_generates_anchors_on_the_fly() -> None:
    model = build_model("n", 3, image_size=(320, 320)).eval()
    cached = model.decoder.anchors.clone()
    with torch.inference_mode():
        outputs = model(torch.rand(1, 3, 384, 512))
    assert outputs["pred_boxes"].shape == (1, 300, 4)
    assert torch.equal(model.decoder.anchors, cached)


def test_set_image_size_rebuilds_buffers_and_spec() -> None:
    model = build_model("n", 3, image_size=(320, 320))
    model.set_image_size((480, 640))
    assert model.spec.image_size == (480, 640)
    assert model.decoder.anchors.shape == (1, 30 * 40 + 15 * 20, 4)
    assert model.encoder.pos_embed1.shape == (1, 15 * 20, 128)
