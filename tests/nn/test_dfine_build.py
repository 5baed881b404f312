"""build_model arguments, the model's description (what checkpoints store), eval at other sizes."""

from __future__ import annotations

import pytest
import torch

from dfseg.config.tasks import TASKS
from dfseg.config.variants import MODEL_VARIANTS
from dfseg.nn import ModelSpecError, build_described_model, build_model
from dfseg.structures.manifest import ModelDescription


@pytest.mark.parametrize("task", list(TASKS))
def test_model_carries_its_description_and_rebuilds_from_it(task: str) -> None:
    model = build_model("s", 7, task=task, image_size=(480, 640))
    description = model.description
    assert description == ModelDescription(
        size="s", num_classes=7, task=task, image_size=(480, 640)
    )
    data = description.model_dump(mode="json")
    assert data == {
        "size": "s",
        "num_classes": 7,
        "task": task,
        "image_size": [480, 640],
        "num_queries": 300,
        "decoder_layers": None,
        "semantic_context": "none",
    }
    restored = ModelDescription.model_validate(data)
    rebuilt = build_described_model(restored)
    assert rebuilt.description == description
    assert rebuilt.has_mask_head == TASKS[task].instance_masks
    assert set(rebuilt.state_dict()) == set(model.state_dict())


@pytest.mark.parametrize(
    "data",
    [
        {"num_classes": 3},
        {"size": "n", "num_classes": 3, "task": "pose"},
        {"size": "n", "num_classes": 3, "image_size": [640]},
        {"size": "xl", "num_classes": 3},
    ],
)
def test_bad_descriptions_do_not_validate(data: dict) -> None:
    with pytest.raises(ValueError):
        ModelDescription.model_validate(data)


def test_every_registered_size_builds_with_its_variant() -> None:
    for size, variant in MODEL_VARIANTS.items():
        model = build_model(size, 2, image_size=(320, 320))
        assert model.description.size == size
        assert len(model.decoder.decoder.layers) == variant.num_decoder_layers
        assert model.encoder.hidden_dim == variant.encoder_hidden_dim


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
    assert model.description.image_size == (480, 640)
    assert model.decoder.anchors.shape == (1, 30 * 40 + 15 * 20, 4)
    assert model.encoder.pos_embed1.shape == (1, 15 * 20, 128)
