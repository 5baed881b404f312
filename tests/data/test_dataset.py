"""InstanceDataset: eval mapping back to original pixels, epoch schedule, batch sampler and
multiscale, unreadable images, crowd handling, collate and debug images."""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from pipeline_checks import check_instance_fields
from pipeline_fixtures import (
    SyntheticSet,
    augment_with,
    boxes_to_pixels,
    colour_pixels,
    image_to_uint8,
    make_synthetic_set,
)

from dfseg.config.train import AugmentConfig
from dfseg.data.batch_sampler import TrainBatchSampler, multiscale_sizes
from dfseg.data.collate import collate_batch
from dfseg.data.dataset import InstanceDataset, SampleRequest, UnreadableDatasetError
from dfseg.data.debug_images import save_debug_images
from dfseg.data.image_reader import decode_reduction
from dfseg.ops.masks import segment_to_mask
from dfseg.ops.resize import boxes_to_original, masks_to_original

# Smaller and larger than the input, both orientations, odd sizes.
SIZES = [(50, 70), (300, 200), (128, 160), (77, 333), (401, 99), (160, 128)]
INPUT_HW = (128, 160)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> SyntheticSet:
    root = tmp_path_factory.mktemp("dataset")
    return make_synthetic_set(root, SIZES, seed=11, kinds=("polygon", "rle"), backgrounds=2)


@pytest.fixture
def copied(synthetic: SyntheticSet, tmp_path: Path) -> SyntheticSet:
    """The synthetic set with its images copied to a folder the test may damage."""
    annotations = []
    for annotation in synthetic.annotations:
        path = tmp_path / annotation.image_path.name
        shutil.copy(annotation.image_path, path)
        annotations.append(replace(annotation, image_path=path))
    return SyntheticSet(annotations, synthetic.colours)


@pytest.mark.parametrize("keep_ratio", [False, True])
@pytest.mark.parametrize("task", ["detect", "segment"])
def test_eval_targets_map_back_to_original_pixels(
    synthetic: SyntheticSet, keep_ratio: bool, task: str
) -> None:
    dataset = InstanceDataset(synthetic.annotations, INPUT_HW, task, "eval", keep_ratio=keep_ratio)
    assert len(dataset) == len(synthetic.annotations)  # backgrounds included
    for index, annotation in enumerate(synthetic.annotations):
        image, target = dataset[index]
        params = target["resize_params"]
        assert image.shape == (3, *INPUT_HW) and params.input_hw == INPUT_HW
        assert target["image_id"] == index
        assert target["orig_size"] == (annotation.height, annotation.width)
        boxes_input = boxes_to_pixels(target["boxes"].numpy(), *INPUT_HW)
        back = boxes_to_original(boxes_input, params)
        np.testing.assert_allclose(back, annotation.boxes_xyxy, atol=1e-3)
        if task == "segment" and annotation.num_instances:
            masks_back = masks_to_original(target["masks"].numpy(), params)
            for mask_back, segment in zip(masks_back, annotation.segments, strict=True):
                expected = segment_to_mask(segment, annotation.height, annotation.width) > 0
                iou = (mask_back & expected).sum() / (mask_back | expected).sum()
                # masks drawn at the input size lose detail when the image was shrunk
                sharp = min(params.scale_xy) >= 1 and expected.sum() > 400
                assert iou > (0.9 if sharp else 0.6)


def test_eval_keeps_crowd_and_train_drops_it(synthetic: SyntheticSet) -> None:
    annotation = synthetic.annotations[2]
    crowd = np.zeros(annotation.num_instances, bool)
    crowd[0] = True
    annotations = [replace(annotation, iscrowd=crowd)]
    _, eval_target = InstanceDataset(annotations, INPUT_HW, "segment", "eval")[0]
    assert eval_target["iscrowd"].tolist() == crowd.tolist()
    assert len(eval_target["labels"]) == annotation.num_instances
    train = InstanceDataset(
        annotations, INPUT_HW, "segment", "train", AugmentConfig.no_augmentation()
    )
    _, train_target = train[SampleRequest(0, INPUT_HW, (), 0)]
    assert not train_target["iscrowd"].any()
    assert sorted(k[1] for k in train_target["instance_keys"].tolist()) == list(
        range(1, annotation.num_instances)
    )


def test_set_epoch_backgrounds_and_final_epochs(synthetic: SyntheticSet) -> None:
    settings = AugmentConfig(
        mosaic=0.5, background_warmup_epochs=2, mosaic_off_last_epochs=3, multiscale=True
    )
    dataset = InstanceDataset(synthetic.annotations, INPUT_HW, "detect", "train", settings)
    labelled = [i for i, a in enumerate(synthetic.annotations) if not a.is_background]
    schedule = []
    for epoch in range(10):
        dataset.set_epoch(epoch, total_epochs=10)
        schedule.append((len(dataset), dataset.mosaic_enabled, dataset.multiscale_enabled))
        if epoch < 2:
            assert dataset.active_indices().tolist() == labelled
    full = len(synthetic.annotations)
    assert (
        schedule
        == [(len(labelled), True, True)] * 2 + [(full, True, True)] * 5 + [(full, False, False)] * 3
    )
    # integer indexing follows the epoch's list: no background during the warm-up
    dataset.set_epoch(0, 10)
    for position in range(len(dataset)):
        assert dataset[position][1]["image_id"] in labelled


def test_sampler_follows_the_schedule(synthetic: SyntheticSet) -> None:
    settings = AugmentConfig(mosaic=1.0, mosaic_off_last_epochs=1, multiscale=True)
    dataset = InstanceDataset(synthetic.annotations, INPUT_HW, "segment", "train", settings)
    sampler = TrainBatchSampler(dataset, batch_size=2, seed=0)
    dataset.set_epoch(0, total_epochs=4)
    batches = list(sampler)
    assert len(batches) == len(sampler) == len(synthetic.annotations) // 2
    assert all(len(r.mosaic_partners) == 3 for batch in batches for r in batch)
    assert len({r.input_hw for batch in batches for r in batch}) > 1
    for request in (r for batch in batches for r in batch):  # four different images per mosaic
        assert len({request.image_index, *request.mosaic_partners}) == 4
    dataset.set_epoch(3, total_epochs=4)
    final = [r for batch in sampler for r in batch]
    assert all(r.mosaic_partners == () and r.input_hw == INPUT_HW for r in final)
    assert sorted(r.image_index for r in final) == list(range(len(synthetic.annotations)))


def test_multiscale_batches_are_consistent(synthetic: SyntheticSet) -> None:
    sizes = multiscale_sizes(INPUT_HW, (0.75, 1.25))
    assert INPUT_HW in sizes and all(h % 32 == 0 and w % 32 == 0 for h, w in sizes)
    assert min(max(s) for s in sizes) >= 0.75 * 160 and max(max(s) for s in sizes) <= 1.25 * 160
    assert multiscale_sizes((640, 640), (0.75, 1.25)) == [(s, s) for s in range(480, 801, 32)]
    settings = AugmentConfig(mosaic=0.5, multiscale=True)
    dataset = InstanceDataset(synthetic.annotations, INPUT_HW, "segment", "train", settings)
    dataset.set_epoch(0, total_epochs=10)
    seen = set()
    for batch_requests in TrainBatchSampler(dataset, batch_size=2, seed=4):
        images, targets = collate_batch([dataset[request] for request in batch_requests])
        seen.add(tuple(images.shape[2:]))
        assert tuple(images.shape[2:]) in sizes and images.shape[:2] == (2, 3)
        for image, target in zip(images, targets, strict=True):
            check_instance_fields(image, target, synthetic, settings.min_box_size)
    assert len(seen) > 1


def test_collate_refuses_mixed_sizes() -> None:
    items = [(torch.zeros(3, 32, 32), {}), (torch.zeros(3, 64, 32), {})]
    with pytest.raises(ValueError, match="same input size"):
        collate_batch(items)
    images, targets = collate_batch([(torch.ones(3, 32, 64), {"a": 1})] * 2)
    assert images.shape == (2, 3, 32, 64) and targets == [{"a": 1}, {"a": 1}]


def test_distributed_ranks_share_sizes_and_split_images(synthetic: SyntheticSet) -> None:
    settings = AugmentConfig(multiscale=True)
    dataset = InstanceDataset(synthetic.annotations, INPUT_HW, "detect", "train", settings)
    dataset.set_epoch(0, 10)
    ranks = [list(TrainBatchSampler(dataset, 3, seed=1, rank=r, world_size=3)) for r in range(3)]
    assert len({len(batches) for batches in ranks}) == 1
    for batches in zip(*ranks, strict=True):
        assert len({batch[0].input_hw for batch in batches}) == 1  # same size on every rank
    indices = [r.image_index for batches in ranks for batch in batches for r in batch]
    assert len(indices) == 9  # 8 images padded to a multiple of 3 ranks
    assert sorted(set(indices)) == list(range(len(synthetic.annotations)))


def test_unreadable_image_is_skipped_with_one_warning(
    copied: SyntheticSet, caplog: pytest.LogCaptureFixture
) -> None:
    dataset = InstanceDataset(
        copied.annotations, INPUT_HW, "segment", "train", AugmentConfig.no_augmentation()
    )
    broken = copied.annotations[1].image_path
    broken.unlink()  # deleted after the scan
    copied.annotations[3].image_path.write_bytes(b"not an image")  # corrupted after the scan
    with caplog.at_level(logging.WARNING, logger="dfseg.data"):
        for seed in range(4):
            for index in (1, 3):
                image, target = dataset[SampleRequest(index, INPUT_HW, (), seed)]
                assert target["image_id"] not in (1, 3) and image.shape == (3, *INPUT_HW)
    messages = [r.getMessage() for r in caplog.records if r.name == "dfseg.data"]
    assert len(messages) == 2
    assert str(broken) in messages[0] and str(copied.annotations[3].image_path) in messages[1]
    dataset.set_epoch(1, 10)  # known-broken images leave the next epochs
    assert 1 not in dataset.active_indices() and 3 not in dataset.active_indices()


def test_unreadable_mosaic_partner_is_replaced(copied: SyntheticSet) -> None:
    dataset = InstanceDataset(
        copied.annotations,
        INPUT_HW,
        "segment",
        "train",
        augment_with(AugmentConfig.no_augmentation(), mosaic=1.0),
    )
    copied.annotations[2].image_path.unlink()
    _, target = dataset[SampleRequest(0, INPUT_HW, (2, 2, 2), 0)]
    assert 2 not in {k[0] for k in target["instance_keys"].tolist()}


def test_image_changed_size_counts_as_unreadable(
    copied: SyntheticSet, caplog: pytest.LogCaptureFixture
) -> None:
    path = copied.annotations[0].image_path
    cv2.imwrite(str(path), np.zeros((10, 10, 3), np.uint8))
    dataset = InstanceDataset(copied.annotations, INPUT_HW, "detect", "eval")
    with caplog.at_level(logging.WARNING, logger="dfseg.data"):
        image, target = dataset[0]
        dataset[0]
    assert len(caplog.records) == 1 and "10x10" in caplog.records[0].getMessage()
    # eval keeps the image id (no substitute would double-count another image): grey and empty
    assert target["image_id"] == 0 and len(target["labels"]) == 0
    assert torch.allclose(image, torch.full_like(image, 114 / 255))


def test_all_images_unreadable_raises(copied: SyntheticSet) -> None:
    for annotation in copied.annotations:
        annotation.image_path.unlink()
    dataset = InstanceDataset(copied.annotations, INPUT_HW, "detect", "train")
    with pytest.raises(UnreadableDatasetError, match="no readable image"):
        dataset[SampleRequest(0, INPUT_HW, (), 0)]


def test_box_only_instances_are_flagged(tmp_path: Path) -> None:
    synthetic = make_synthetic_set(tmp_path, [(96, 128)] * 2, seed=2, kinds=("box", "polygon"))
    dataset = InstanceDataset(synthetic.annotations, (96, 128), "segment", "eval")
    _, target = dataset[0]
    expected = [s is not None for s in synthetic.annotations[0].segments]
    assert target["has_mask"].tolist() == expected and not all(expected)
    box_rows = [i for i, flag in enumerate(expected) if not flag]
    for row in box_rows:  # the mask of a box-only instance is its box
        x1, y1, x2, y2 = boxes_to_pixels(target["boxes"][row].numpy(), 96, 128)[0].round()
        mask = target["masks"][row].numpy()
        assert (
            mask.sum() == (x2 - x1) * (y2 - y1) and mask[int(y1) : int(y2), int(x1) : int(x2)].all()
        )


def test_debug_images_draw_boxes_and_masks(synthetic: SyntheticSet, tmp_path: Path) -> None:
    dataset = InstanceDataset(synthetic.annotations, INPUT_HW, "segment", "eval")
    images, targets = collate_batch([dataset[i] for i in range(3)])
    paths = save_debug_images(images, targets, tmp_path / "debug", ["a", "b", "c"], max_images=2)
    assert [p.name for p in paths] == ["train_sample_0.jpg", "train_sample_1.jpg"]
    drawn = cv2.imread(str(paths[0]))
    assert drawn.shape == (*INPUT_HW, 3)
    original = cv2.cvtColor(
        (images[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR
    )
    changed = np.abs(drawn.astype(int) - original.astype(int)).max(axis=2) > 40
    masks = targets[0]["masks"].numpy().astype(bool).any(axis=0)
    assert changed[masks].mean() > 0.5  # the masks are overlaid
    x1, _, x2, y2 = boxes_to_pixels(targets[0]["boxes"][:1].numpy(), *INPUT_HW)[0].round()
    assert changed[int(y2) - 1, int(x1) : int(x2)].mean() > 0.5  # the box bottom edge is drawn
    assert save_debug_images(images, targets, tmp_path / "none", ["a"], max_images=0) == []


def _as_jpeg(synthetic: SyntheticSet, folder: Path) -> SyntheticSet:
    annotations = []
    for annotation in synthetic.annotations:
        path = folder / (annotation.image_path.stem + ".jpg")
        cv2.imwrite(
            str(path), cv2.imread(str(annotation.image_path)), [cv2.IMWRITE_JPEG_QUALITY, 98]
        )
        annotations.append(replace(annotation, image_path=path))
    return SyntheticSet(annotations, synthetic.colours)


def test_decode_reduction_choices(tmp_path: Path) -> None:
    assert decode_reduction(tmp_path / "a.png", 0.1) == 1
    assert [decode_reduction(tmp_path / "a.JPG", s) for s in (1.5, 0.6, 0.5, 0.3, 0.2, 0.1)] == [
        1,
        1,
        2,
        2,
        4,
        8,
    ]


@pytest.mark.parametrize("size", [(512, 640), (515, 643)])
def test_reduced_jpeg_decoding_keeps_geometry(tmp_path: Path, size: tuple[int, int]) -> None:
    """Training decodes large JPEGs at 1/2..1/8 size: pixels, boxes and masks must still agree
    with the full-size decode that evaluation uses (to a fraction of an input pixel)."""
    synthetic = _as_jpeg(make_synthetic_set(tmp_path, [size] * 2, seed=4), tmp_path)
    needed_scale = max(INPUT_HW[0] / size[0], INPUT_HW[1] / size[1])  # stretch to the input
    assert decode_reduction(synthetic.annotations[0].image_path, needed_scale) == 4
    train = InstanceDataset(
        synthetic.annotations, INPUT_HW, "segment", "train", AugmentConfig.no_augmentation()
    )
    evaluation = InstanceDataset(synthetic.annotations, INPUT_HW, "segment", "eval")
    image, target = train[SampleRequest(0, INPUT_HW, (), 0)]
    eval_image, eval_target = evaluation[0]
    assert torch.equal(target["labels"], eval_target["labels"])
    masks, eval_masks = target["masks"].numpy(), eval_target["masks"].numpy()
    for mask, eval_mask in zip(masks, eval_masks, strict=True):
        # An odd side decodes to a last reduced pixel reaching past the edge, so the train input
        # covers a sliver more of the image (1/4 input pixel here): masks differ by that only.
        assert (mask & eval_mask).sum() / (mask | eval_mask).sum() > 0.9
        for pixels in (image, eval_image):  # the instance sits where its mask says
            weights = pixels.numpy().max(axis=0) * mask  # bright shape on black
            centre = np.array(np.nonzero(mask)).mean(axis=1)
            found = (np.indices(mask.shape) * weights).reshape(2, -1).sum(1) / weights.sum()
            np.testing.assert_allclose(found, centre, atol=0.3)
    assert (image - eval_image).abs().mean() < 0.02


def test_reduced_jpeg_tiles_in_mosaic_stay_consistent(tmp_path: Path) -> None:
    synthetic = _as_jpeg(
        make_synthetic_set(tmp_path, [(700, 900), (901, 655)] * 2, seed=6), tmp_path
    )
    settings = augment_with(AugmentConfig.no_augmentation(), mosaic=1.0)
    dataset = InstanceDataset(synthetic.annotations, INPUT_HW, "segment", "train", settings)
    for seed in range(4):
        image, target = dataset[SampleRequest(0, INPUT_HW, (1, 2, 3), seed)]
        check_instance_fields(image, target, synthetic, settings.min_box_size)
        brightness = image.numpy().max(axis=0)
        for mask in target["masks"].numpy().astype(bool):
            assert brightness[mask].mean() > 0.5  # masks lie on their (bright) shapes


def _large_images(tmp_path: Path, count: int) -> SyntheticSet:
    """`count` 1024x1536 images (instances 200-460 px across) and one small 200x300 image."""
    return make_synthetic_set(tmp_path, [(1024, 1536)] * count + [(200, 300)], seed=3)


def test_tiles_show_large_images_at_their_own_scale(tmp_path: Path) -> None:
    """`tile`: a sample is a 512 px window of the 1024x1536 image, stretched to the input like a
    whole image would be; instances inside keep their shape at the tile's scale, instances the
    window cuts are clipped to it, and nothing visible is dropped."""
    synthetic = _large_images(tmp_path, 1)
    settings = AugmentConfig.no_augmentation()
    dataset = InstanceDataset(
        synthetic.annotations, INPUT_HW, "segment", "train", settings, tile=512
    )
    assert len(dataset) == 2 * 3 + 1  # the large image once per tile, the small one once
    scale = (INPUT_HW[0] / 512) * (INPUT_HW[1] / 512)  # input pixels per original pixel
    annotation = synthetic.annotations[0]
    whole = cut = 0
    for seed in range(12):
        image, target = dataset[SampleRequest(0, INPUT_HW, (), seed)]
        keys = check_instance_fields(image, target, synthetic, settings.min_box_size)
        pixels = image_to_uint8(image.numpy())
        for key, colour in synthetic.colours.items():
            found = colour_pixels(pixels, colour)
            rows, columns = np.nonzero(found)
            if key[0] == 0 and len(rows) and np.ptp(rows) > 4 and np.ptp(columns) > 4:
                assert key in keys, f"instance {key} is visible but was dropped"
        height, width = INPUT_HW
        for (_, instance), mask, box in zip(
            keys, target["masks"].numpy().astype(bool), boxes_to_pixels(
                target["boxes"].numpy(), height, width), strict=True
        ):  # fmt: skip
            assert colour_pixels(pixels, synthetic.colours[(0, instance)])[mask].mean() > 0.8
            inside = box[0] > 1 and box[1] > 1 and box[2] < width - 1 and box[3] < height - 1
            segment = annotation.segments[instance]
            assert segment is not None
            area = segment_to_mask(segment, annotation.height, annotation.width).sum() * scale
            if inside:
                whole += 1
                assert mask.sum() == pytest.approx(area, rel=0.1)
            else:
                cut += 1
                assert mask.sum() < area * 1.1
    assert whole and cut  # both kinds were seen
    small, small_target = dataset[SampleRequest(1, INPUT_HW, (), 0)]  # smaller than a tile
    plain = InstanceDataset(synthetic.annotations, INPUT_HW, "segment", "train", settings)
    plain_image, plain_target = plain[SampleRequest(1, INPUT_HW, (), 0)]
    assert torch.equal(small, plain_image) and torch.equal(
        small_target["boxes"], plain_target["boxes"]
    )


def test_tiles_in_mosaics_and_reduced_decoding(tmp_path: Path) -> None:
    synthetic = _as_jpeg(_large_images(tmp_path, 4), tmp_path)
    settings = augment_with(AugmentConfig.no_augmentation(), mosaic=1.0)
    plain = InstanceDataset(synthetic.annotations, INPUT_HW, "segment", "train", settings)
    tiled = InstanceDataset(synthetic.annotations, INPUT_HW, "segment", "train", settings, tile=256)
    # A whole 1536 px image squeezed to 160 px decodes at 1/4 (mosaic zoom included); a 256 px
    # tile needs the full size.
    assert plain.cache_reductions()[:4] == [4] * 4 and tiled.cache_reductions()[:4] == [1] * 4
    assert len(tiled) == 4 * 4 * 6 + 2  # the 200x300 image is two tiles wide
    for seed in range(4):
        image, target = tiled[SampleRequest(0, INPUT_HW, (1, 2, 3), seed)]
        check_instance_fields(image, target, synthetic, settings.min_box_size)
        brightness = image.numpy().max(axis=0)
        for mask in target["masks"].numpy().astype(bool):
            assert brightness[mask].mean() > 0.5  # masks lie on their (bright) shapes
