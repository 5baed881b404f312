"""Augmentations applied to images, boxes and masks stay consistent (property-style, many seeds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pipeline_checks import check_colours, check_instance_fields
from pipeline_fixtures import SyntheticSet, augment_with, make_synthetic_set
from pydantic import ValidationError

from dfseg.config.train import AugmentConfig
from dfseg.data.dataset import InstanceDataset, SampleRequest
from dfseg.data.sample import Sample
from dfseg.data.transforms import augment_sample, build_train_pipeline

INPUT_HW = (128, 160)
SIZES = [(120, 160), (200, 120), (96, 96), (150, 210), (64, 80), (300, 300)]
SEEDS = range(10)

NONE = AugmentConfig.no_augmentation()
STRONG_GEOMETRY = {
    "rotate_degrees": 45.0,
    "affine_scale": (0.5, 1.6),
    "affine_translate": 0.3,
    "affine_shear": 15.0,
}
# name -> (settings, how the pixels can be checked):
#   "exact": geometric, boxes match the instance pixels; "encloses": geometric, boxes may be
#   larger (rotated boxes in the detect task, occluding dropout holes); "photometric": geometry
#   identical to no augmentation; "mixed": colours change and shapes move, invariants only.
AUGMENTATIONS: dict[str, tuple[AugmentConfig, str]] = {
    "hflip": (augment_with(NONE, hflip=1.0), "exact"),
    "vflip": (augment_with(NONE, vflip=1.0), "exact"),
    "rotate": (augment_with(NONE, rotate_prob=1.0, **STRONG_GEOMETRY), "encloses"),
    "affine": (augment_with(NONE, affine_prob=1.0, **STRONG_GEOMETRY), "encloses"),
    "coarse_dropout": (augment_with(NONE, coarse_dropout_prob=1.0), "encloses"),
    "brightness_contrast": (augment_with(NONE, brightness_contrast_prob=1.0), "photometric"),
    "gamma": (augment_with(NONE, gamma_prob=1.0), "photometric"),
    "blur": (augment_with(NONE, blur_prob=1.0), "photometric"),
    "noise": (augment_with(NONE, noise_prob=1.0), "photometric"),
    "gray": (augment_with(NONE, gray_prob=1.0), "photometric"),
    "all": (
        augment_with(
            AugmentConfig(
                mosaic=0.0,
                vflip=0.5,
                rotate_prob=0.5,
                coarse_dropout_prob=0.5,
                blur_prob=0.5,
                noise_prob=0.5,
                gray_prob=0.5,
                gamma_prob=0.5,
                brightness_contrast_prob=0.5,
            ),
            **STRONG_GEOMETRY,
        ),
        "mixed",
    ),
}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> SyntheticSet:
    root = tmp_path_factory.mktemp("synthetic")
    return make_synthetic_set(root, SIZES, seed=3, kinds=("polygon", "rle", "polygon", "box"))


def _dataset(synthetic: SyntheticSet, task: str, settings: AugmentConfig, keep_ratio: bool):
    return InstanceDataset(
        synthetic.annotations, INPUT_HW, task, "train", settings, keep_ratio=keep_ratio
    )


@pytest.mark.parametrize("task", ["detect", "segment"])
@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_each_augmentation_keeps_instances_consistent(
    synthetic: SyntheticSet, task: str, name: str
) -> None:
    settings, check = AUGMENTATIONS[name]
    for keep_ratio in (False, True):
        dataset = _dataset(synthetic, task, settings, keep_ratio)
        plain = _dataset(synthetic, task, NONE, keep_ratio)
        for seed in SEEDS:
            index = seed % len(SIZES)
            request = SampleRequest(index, INPUT_HW, (), seed)
            image, target = dataset[request]
            keys = check_instance_fields(image, target, synthetic, settings.min_box_size)
            if check in ("exact", "encloses"):
                loose = check == "encloses" and (task == "detect" or name == "coarse_dropout")
                check_colours(image, target, synthetic, [index], boxes_enclose_only=loose)
            elif check == "photometric":
                _, reference = plain[request]
                assert keys == [tuple(k) for k in reference["instance_keys"].tolist()]
                torch.testing.assert_close(target["boxes"], reference["boxes"])
                if task == "segment":
                    assert torch.equal(target["masks"], reference["masks"])


@pytest.mark.parametrize("name", ["hflip", "rotate", "gray", "all"])
def test_augmentations_change_the_image(synthetic: SyntheticSet, name: str) -> None:
    dataset = _dataset(synthetic, "segment", AUGMENTATIONS[name][0], keep_ratio=False)
    plain = _dataset(synthetic, "segment", NONE, keep_ratio=False)
    changed = 0
    for seed in SEEDS:
        request = SampleRequest(0, INPUT_HW, (), seed)
        changed += not torch.equal(dataset[request][0], plain[request][0])
    assert changed >= len(SEEDS) - 1


def test_same_seed_same_augmentation_and_seeds_differ(synthetic: SyntheticSet) -> None:
    dataset = _dataset(synthetic, "segment", AUGMENTATIONS["all"][0], keep_ratio=False)
    first = dataset[SampleRequest(1, INPUT_HW, (), 7)]
    again = dataset[SampleRequest(1, INPUT_HW, (), 7)]
    other = dataset[SampleRequest(1, INPUT_HW, (), 8)]
    assert torch.equal(first[0], again[0]) and torch.equal(first[1]["masks"], again[1]["masks"])
    assert not torch.equal(first[0], other[0])


def test_transforms_get_independent_seeds() -> None:
    """Compose.set_random_seed would give every transform the same seed: flips would coincide."""
    pipeline = build_train_pipeline(augment_with(NONE, hflip=0.5, vflip=0.5), transform_boxes=True)
    image = np.zeros((8, 8, 3), np.uint8)
    image[0, 0] = 255  # a marked corner shows which flips happened
    sample = Sample.empty(image, with_masks=False)
    corners = set()
    for seed in range(40):
        out = augment_sample(pipeline, sample, seed).image
        corners.add(tuple(int(v) for v in np.argwhere(out[..., 0] == 255)[0]))
    assert corners == {(0, 0), (0, 7), (7, 0), (7, 7)}


def test_disabled_augmentations_leave_the_pipeline() -> None:
    assert build_train_pipeline(NONE, transform_boxes=True).transforms == []
    names = [type(t).__name__ for t in build_train_pipeline(AugmentConfig(), True).transforms]
    assert names == [
        "HorizontalFlip",
        "Affine",
        "RandomBrightnessContrast",
        "RandomGamma",
        "OneOf",
        "GaussNoise",
        "ToGray",
    ]


def test_no_augmentation_train_equals_eval(synthetic: SyntheticSet) -> None:
    for keep_ratio in (False, True):
        train = _dataset(synthetic, "segment", NONE, keep_ratio)
        evaluation = InstanceDataset(
            synthetic.annotations, INPUT_HW, "segment", "eval", keep_ratio=keep_ratio
        )
        for index in range(len(SIZES)):
            image, target = train[SampleRequest(index, INPUT_HW, (), 0)]
            eval_image, eval_target = evaluation[index]
            assert torch.equal(image, eval_image)
            assert torch.equal(target["masks"], eval_target["masks"])
            assert torch.equal(target["labels"], eval_target["labels"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hflip", 1.5),
        ("mosaic", -0.1),
        ("affine_scale", (1.2, 0.8)),
        ("blur_kernel", (4, 7)),
        ("background_warmup_epochs", -1),
    ],
)
def test_settings_reject_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        AugmentConfig(**{field: value})  # type: ignore[arg-type]


def test_tiny_instance_dropped_consistently_and_becomes_background(tmp_path: Path) -> None:
    synthetic = make_synthetic_set(tmp_path, [(640, 640)], seed=0)
    annotation = synthetic.annotations[0]
    # One 3-pixel instance: after scaling 640 -> 128 it is under a pixel and must be dropped.
    ring = np.array([[10, 10], [13, 10], [13, 13], [10, 13]], np.float32)
    from dfseg.structures import ImageAnnotation, Polygons

    tiny = ImageAnnotation(
        image_path=annotation.image_path,
        width=640,
        height=640,
        labels=np.array([2]),
        boxes_xyxy=np.array([[10, 10, 13, 13]], np.float32),
        segments=[Polygons((ring,))],
    )
    for task in ("detect", "segment"):
        dataset = InstanceDataset([tiny], (128, 128), task, "train", NONE)
        image, target = dataset[SampleRequest(0, (128, 128), (), 0)]
        assert target["labels"].shape == (0,) and target["boxes"].shape == (0, 4)
        assert target["instance_keys"].shape == (0, 2)
        if task == "segment":
            assert target["masks"].shape == (0, 128, 128)
        assert image.shape == (3, 128, 128)
