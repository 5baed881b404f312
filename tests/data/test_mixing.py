"""MixUp and copy-paste: pixels, masks and instances of the two images, their planning in the
epoch window, and their settings' validation."""

from __future__ import annotations

import numpy as np
import pytest
from pipeline_checks import check_instance_fields
from pipeline_fixtures import (
    SyntheticSet,
    augment_with,
    colour_pixels,
    image_to_uint8,
    make_synthetic_set,
)
from pydantic import ValidationError

from dfseg.config.train import AugmentConfig
from dfseg.data.dataset import InstanceDataset, SampleRequest
from dfseg.data.mixing import copy_paste, mixup
from dfseg.data.sample import Sample

HW = (8, 10)
INPUT_HW = (128, 160)


def _sample(grey: int, rectangles: list[tuple[int, int, int, int]], image_index: int) -> Sample:
    """A flat grey image with one rectangular masked instance per (x1, y1, x2, y2)."""
    masks = np.zeros((len(rectangles), *HW), np.uint8)
    for mask, (x1, y1, x2, y2) in zip(masks, rectangles, strict=True):
        mask[y1:y2, x1:x2] = 1
    count = len(rectangles)
    return Sample(
        image=np.full((*HW, 3), grey, np.uint8),
        labels=np.arange(count, dtype=np.int64),
        boxes_xyxy=np.array(rectangles, np.float32).reshape(-1, 4),
        masks=masks,
        has_mask=np.ones(count, bool),
        instance_keys=np.array([[image_index, i] for i in range(count)], np.int64).reshape(-1, 2),
        iscrowd=np.zeros(count, bool),
    )


def test_mixup_blends_pixels_and_keeps_both_sets_of_instances() -> None:
    base, other = _sample(100, [(0, 0, 4, 4)], 0), _sample(200, [(5, 5, 9, 8), (1, 1, 3, 3)], 1)
    mixed = mixup(base, other, 0.45)
    assert (mixed.image == round(100 * 0.45 + 200 * 0.55)).all()
    assert mixed.instance_keys.tolist() == [[0, 0], [1, 0], [1, 1]]
    assert mixed.masks is not None and mixed.masks.shape == (3, *HW)
    np.testing.assert_array_equal(mixed.masks[1], other.masks[0])
    with pytest.raises(ValueError, match="weight"):
        mixup(base, other, 1.5)
    small = Sample.empty(np.zeros((4, 4, 3), np.uint8), with_masks=True)
    with pytest.raises(ValueError, match="differ in size"):
        mixup(base, small, 0.5)


def test_copy_paste_covers_pixels_and_cuts_the_occluded_masks() -> None:
    # base: instance 0 half covered by the pasted one, instance 1 covered entirely
    base = _sample(100, [(0, 0, 6, 4), (6, 4, 8, 6)], 0)
    other = _sample(200, [(3, 0, 9, 7)], 1)
    pasted = copy_paste(base, other, np.random.default_rng(0), fraction=0.5)
    covered = other.masks[0].astype(bool)
    assert (pasted.image[covered] == 200).all() and (pasted.image[~covered] == 100).all()
    assert pasted.instance_keys.tolist() == [[0, 0], [0, 1], [1, 0]]
    assert pasted.masks is not None
    assert pasted.masks[0].sum() == 3 * 4 and not pasted.masks[0][covered].any()
    assert not pasted.masks[1].any()  # fully occluded: the dataset drops it
    np.testing.assert_array_equal(pasted.masks[2], other.masks[0])
    assert (base.image == 100).all() and base.masks[0].sum() == 6 * 4  # inputs untouched


def test_copy_paste_without_masks_or_candidates_leaves_the_sample() -> None:
    base = _sample(100, [(0, 0, 4, 4)], 0)
    boxes_only = _sample(200, [(5, 5, 9, 8)], 1)
    boxes_only.has_mask[:] = False
    assert copy_paste(base, boxes_only, np.random.default_rng(0), 0.5) is base
    detect = Sample.empty(base.image, with_masks=False)
    assert (
        copy_paste(detect, _sample(200, [(1, 1, 3, 3)], 1), np.random.default_rng(0), 1) is detect
    )


def test_copy_paste_fraction_picks_at_least_one() -> None:
    other = _sample(200, [(0, 0, 2, 2), (3, 3, 5, 5), (6, 6, 8, 8)], 1)
    counts = [
        copy_paste(_sample(100, [], 0), other, np.random.default_rng(seed), 1e-9).num_instances
        for seed in range(5)
    ]
    assert counts == [1] * 5
    every = copy_paste(_sample(100, [], 0), other, np.random.default_rng(0), 1.0)
    assert every.num_instances == 3


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> SyntheticSet:
    root = tmp_path_factory.mktemp("mixing")
    return make_synthetic_set(root, [(128, 160), (200, 240), (150, 150), (160, 128)], seed=4)


def test_dataset_mixup_item_has_both_images_instances(synthetic: SyntheticSet) -> None:
    settings = augment_with(AugmentConfig.no_augmentation(), mixup=1.0)
    dataset = InstanceDataset(synthetic.annotations, INPUT_HW, "segment", "train", settings)
    image, target = dataset[SampleRequest(0, INPUT_HW, (), 7, mixup_partner=2)]
    keys = check_instance_fields(image, target, synthetic, settings.min_box_size)
    assert {image_index for image_index, _ in keys} == {0, 2}
    alone, _ = dataset[SampleRequest(0, INPUT_HW, (), 7)]
    partner, _ = dataset[SampleRequest(2, INPUT_HW, (), 7)]
    low, high = settings.mixup_weight  # the blend lies between the two images' pixels
    difference = (alone - partner).numpy()
    apart = np.abs(difference) > 0.2  # pixels where the two images differ clearly
    weights = (image - partner).numpy()[apart] / difference[apart]
    assert apart.sum() > 100
    assert weights.min() >= low - 0.02 and weights.max() <= high + 0.02


def test_dataset_copy_paste_item_pastes_the_partner_shapes(synthetic: SyntheticSet) -> None:
    settings = augment_with(
        AugmentConfig.no_augmentation(), copy_paste=1.0, copy_paste_fraction=1.0
    )
    dataset = InstanceDataset(synthetic.annotations, INPUT_HW, "segment", "train", settings)
    image, target = dataset[SampleRequest(0, INPUT_HW, (), 3, paste_partner=1)]
    keys = check_instance_fields(image, target, synthetic, settings.min_box_size)
    pasted = [i for i, key in enumerate(keys) if key[0] == 1]
    assert len(pasted) == len(synthetic.annotations[1].labels)  # fraction 1: all of them
    pixels = image_to_uint8(image.numpy())
    for i in pasted:  # each pasted mask shows its own instance's colour
        mask = target["masks"][i].numpy().astype(bool)
        on_colour = colour_pixels(pixels, synthetic.colours[keys[i]])
        assert on_colour[mask].mean() > 0.8


def test_plan_draws_partners_only_inside_the_mixing_window(synthetic: SyntheticSet) -> None:
    base = augment_with(AugmentConfig.no_augmentation(), mosaic=0.5, mosaic_off_last_epochs=2)
    mixing = augment_with(base, mixup=1.0, copy_paste=1.0, mix_start_epoch=3)
    plain = InstanceDataset(synthetic.annotations, INPUT_HW, "segment", "train", base)
    mixed = InstanceDataset(synthetic.annotations, INPUT_HW, "segment", "train", mixing)

    def plans(dataset: InstanceDataset, epoch: int) -> list[SampleRequest]:
        dataset.set_epoch(epoch, total_epochs=10)
        rng = np.random.default_rng(5)
        return [dataset.plan_sample(i, INPUT_HW, rng) for i in range(4)]

    for request in plans(mixed, 2) + plans(mixed, 8):  # before the window, in the last epochs
        assert (
            request.mosaic_partners == () and request.mixup_partner == request.paste_partner == -1
        )
    inside = plans(mixed, 5)
    for index, request in enumerate(inside):
        assert request.mixup_partner not in (-1, index) and request.paste_partner not in (-1, index)
    # a sample's mosaic draws and seed come first: MixUp and copy-paste do not change them
    same_window = augment_with(base, mixup=1.0, copy_paste=1.0)
    also = InstanceDataset(synthetic.annotations, INPUT_HW, "segment", "train", same_window)
    with_mix, without = plans(also, 5)[0], plans(plain, 5)[0]
    assert (with_mix.mosaic_partners, with_mix.seed) == (without.mosaic_partners, without.seed)
    detect = InstanceDataset(synthetic.annotations, INPUT_HW, "detect", "train", same_window)
    assert all(request.paste_partner == -1 for request in plans(detect, 5))  # no masks to paste


def test_mixup_weight_is_validated() -> None:
    with pytest.raises(ValidationError, match="mixup_weight"):
        AugmentConfig(mixup_weight=(0.6, 0.4))
    assert AugmentConfig.no_augmentation().mixup == 0.0
    assert AugmentConfig.no_augmentation().copy_paste == 0.0
