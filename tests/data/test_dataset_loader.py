"""DataLoader construction: reproducible batches with worker processes, epochs differ, broken
images flagged in a worker are known to the main process."""

from __future__ import annotations

import pickle
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from pipeline_fixtures import SyntheticSet, make_synthetic_set

from dfseg.config.train import AugmentConfig
from dfseg.data.dataset import InstanceDataset
from dfseg.data.image_reader import BrokenImageRegistry
from dfseg.data.loader import build_eval_loader, build_train_loader

INPUT_HW = (96, 128)
SETTINGS = AugmentConfig(mosaic=0.5, rotate_prob=0.5, rotate_degrees=20, multiscale=True)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> SyntheticSet:
    root = tmp_path_factory.mktemp("loader")
    return make_synthetic_set(root, [(90, 120), (130, 100), (96, 128), (70, 70)] * 2, seed=1)


def _first_batch(synthetic: SyntheticSet, workers: int, seed: int, epoch: int = 0):
    dataset = InstanceDataset(synthetic.annotations, INPUT_HW, "segment", "train", SETTINGS)
    loader = build_train_loader(dataset, batch_size=4, num_workers=workers, seed=seed)
    dataset.set_epoch(epoch, total_epochs=10)
    return next(iter(loader))


def _same_batch(first, second) -> bool:
    (images_a, targets_a), (images_b, targets_b) = first, second
    if images_a.shape != images_b.shape or not torch.equal(images_a, images_b):
        return False
    return all(
        torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["masks"], b["masks"])
        for a, b in zip(targets_a, targets_b, strict=True)
    )


def test_same_seed_same_first_batch_with_two_workers(synthetic: SyntheticSet) -> None:
    first = _first_batch(synthetic, workers=2, seed=5)
    assert _same_batch(first, _first_batch(synthetic, workers=2, seed=5))
    # batches do not depend on the number of workers either
    assert _same_batch(first, _first_batch(synthetic, workers=0, seed=5))
    assert not _same_batch(first, _first_batch(synthetic, workers=2, seed=6))


def test_epochs_get_different_augmentations(synthetic: SyntheticSet) -> None:
    dataset = InstanceDataset(synthetic.annotations, INPUT_HW, "segment", "train", SETTINGS)
    loader = build_train_loader(dataset, batch_size=4, num_workers=2, seed=5)
    batches = []
    for epoch in range(2):  # persistent workers: the epoch reaches them through the sampler
        dataset.set_epoch(epoch, total_epochs=10)
        batches.append([batch for batch in loader])
    assert len(batches[0]) == len(batches[1]) == 2
    assert not _same_batch(batches[0][0], batches[1][0])


def test_loader_settings(synthetic: SyntheticSet) -> None:
    train = InstanceDataset(synthetic.annotations, INPUT_HW, "detect", "train", SETTINGS)
    loader = build_train_loader(train, batch_size=2, num_workers=2, device="cpu")
    assert loader.persistent_workers and not loader.pin_memory
    assert not build_train_loader(train, batch_size=2, num_workers=0).persistent_workers
    evaluation = InstanceDataset(synthetic.annotations, INPUT_HW, "detect", "eval")
    images, targets = next(iter(build_eval_loader(evaluation, batch_size=3, num_workers=0)))
    assert images.shape == (3, 3, *INPUT_HW)
    assert [t["image_id"] for t in targets] == [0, 1, 2]
    with pytest.raises(ValueError, match="train mode"):
        build_train_loader(evaluation, batch_size=2, num_workers=0)


def test_worker_flags_broken_images_for_the_main_process(
    synthetic: SyntheticSet, tmp_path: Path
) -> None:
    annotations = []
    for annotation in synthetic.annotations:
        shutil.copy(annotation.image_path, tmp_path / annotation.image_path.name)
        annotations.append(replace(annotation, image_path=tmp_path / annotation.image_path.name))
    dataset = InstanceDataset(annotations, INPUT_HW, "detect", "train", SETTINGS)
    annotations[2].image_path.unlink()
    loader = build_train_loader(dataset, batch_size=4, num_workers=2, seed=0)
    dataset.set_epoch(0, 10)
    for images, _ in loader:
        assert images.shape[0] == 4
    assert dataset.broken_images.broken_indices().tolist() == [2]  # flagged in a worker
    dataset.set_epoch(1, 10)
    assert 2 not in dataset.active_indices()


def test_registry_copies_outside_process_start_are_snapshots() -> None:
    registry = BrokenImageRegistry(4)
    registry.report(1, FileNotFoundError("x"))  # type: ignore[arg-type]
    copy = pickle.loads(pickle.dumps(registry))
    assert copy.broken_indices().tolist() == [1]
    copy.report(3, FileNotFoundError("y"))  # type: ignore[arg-type]
    assert registry.broken_indices().tolist() == [1]
