"""4-image mosaic: tiles, boxes and masks agree; instances cut at tile borders stay consistent."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from pipeline_checks import check_colours, check_instance_fields
from pipeline_fixtures import SyntheticSet, augment_with, make_synthetic_set

from dfseg.config.train import AugmentConfig
from dfseg.data.dataset import InstanceDataset, SampleRequest
from dfseg.data.image_reader import DecodedImage
from dfseg.data.mosaic import build_mosaic
from dfseg.structures import ImageAnnotation

INPUT_HW = (128, 160)
SIZES = [(120, 160), (200, 120), (96, 96), (150, 210), (64, 80), (300, 300), (160, 128)]
MOSAIC_ONLY = augment_with(AugmentConfig.no_augmentation(), mosaic=1.0, mosaic_scale=(0.4, 1.6))
MOSAIC_AND_ALL = AugmentConfig(
    mosaic=1.0,
    vflip=0.5,
    rotate_prob=0.5,
    rotate_degrees=30,
    affine_shear=10,
    coarse_dropout_prob=0.5,
    blur_prob=0.3,
    noise_prob=0.3,
    gray_prob=0.3,
)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> SyntheticSet:
    root = tmp_path_factory.mktemp("mosaic")
    return make_synthetic_set(root, SIZES, seed=5, kinds=("polygon", "rle", "box"))


def _requests(count: int) -> list[SampleRequest]:
    """Mosaics of four different images (as `InstanceDataset.plan_sample` picks them)."""
    rng = np.random.default_rng(0)
    requests = []
    for seed in range(count):
        first, *partners = (int(i) for i in rng.choice(len(SIZES), size=4, replace=False))
        requests.append(SampleRequest(first, INPUT_HW, tuple(partners), seed))
    return requests


@pytest.mark.parametrize("task", ["detect", "segment"])
@pytest.mark.parametrize("keep_ratio", [False, True])
def test_mosaic_boxes_masks_and_pixels_agree(
    synthetic: SyntheticSet, task: str, keep_ratio: bool
) -> None:
    dataset = InstanceDataset(
        synthetic.annotations, INPUT_HW, task, "train", MOSAIC_ONLY, keep_ratio=keep_ratio
    )
    sources_seen = set()
    for request in _requests(16):
        image, target = dataset[request]
        assert image.shape == (3, *INPUT_HW)
        keys = check_instance_fields(image, target, synthetic, MOSAIC_ONLY.min_box_size)
        sources = [request.image_index, *request.mosaic_partners]
        assert {key[0] for key in keys} <= set(sources)
        # Detect: a box cut at a tile border encloses the cut instance, it cannot be tight.
        check_colours(image, target, synthetic, sources, boxes_enclose_only=task == "detect")
        sources_seen.add(len({key[0] for key in keys}))
    assert max(sources_seen) >= 3  # instances really come from several images


@pytest.mark.parametrize("task", ["detect", "segment"])
def test_mosaic_with_all_augmentations_keeps_invariants(synthetic: SyntheticSet, task: str) -> None:
    dataset = InstanceDataset(synthetic.annotations, INPUT_HW, task, "train", MOSAIC_AND_ALL)
    for request in _requests(16):
        image, target = dataset[request]
        check_instance_fields(image, target, synthetic, MOSAIC_AND_ALL.min_box_size)


def _solid_tile(colour: int, height: int, width: int, index: int) -> DecodedImage:
    image = np.full((height, width, 3), colour, np.uint8)
    annotation = ImageAnnotation(image_path=f"solid_{index}.png", width=width, height=height)
    return DecodedImage(image, annotation, index)


def test_build_mosaic_places_the_four_images_around_the_junction() -> None:
    tiles = [_solid_tile(40 * (i + 1), 100, 100, i) for i in range(4)]
    for seed in range(5):
        rng = np.random.default_rng(seed)
        sample = build_mosaic(
            tiles, (128, 160), keep_ratio=True, zoom_range=(0.25, 0.25), rng=rng, with_masks=True
        )
        image = sample.image
        assert image.shape == (128, 160, 3) and sample.num_instances == 0
        assert sample.masks is not None and sample.masks.shape == (0, 128, 160)
        # Each 100x100 image fits the input as 128x128, at zoom 0.25 it is 32x32; the junction
        # stays within a quarter zoomed input of the centre, so all four are fully visible.
        values = image[..., 0]
        for quadrant, colour in enumerate((40, 80, 120, 160)):
            ys, xs = np.nonzero(values == colour)
            assert len(ys) == 32 * 32, quadrant
            assert xs.max() - xs.min() == 31 and ys.max() - ys.min() == 31
        top_left = np.argwhere(values == 40).max(0)
        bottom_right = np.argwhere(values == 160).min(0)
        np.testing.assert_array_equal(bottom_right - top_left, [1, 1])  # they meet
        assert (values == 114).sum() == 128 * 160 - 4 * 32 * 32  # the rest is padding


def test_build_mosaic_needs_four_tiles() -> None:
    tiles = [_solid_tile(10, 20, 20, i) for i in range(3)]
    with pytest.raises(ValueError, match="4 images"):
        build_mosaic(tiles, (64, 64), True, (1.0, 1.0), np.random.default_rng(0), False)


def test_mosaic_drops_crowd_instances(synthetic: SyntheticSet) -> None:
    annotations = list(synthetic.annotations)
    crowded = annotations[0]
    annotations[0] = replace(crowded, iscrowd=np.ones(crowded.num_instances, bool))
    dataset = InstanceDataset(annotations, INPUT_HW, "segment", "train", MOSAIC_ONLY)
    for seed in range(6):
        _, target = dataset[SampleRequest(0, INPUT_HW, (0, 0, 0), seed)]
        assert len(target["labels"]) == 0 and not target["iscrowd"].any()
