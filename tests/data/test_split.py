"""Splitting: ratio validation, determinism, stratification, backgrounds, files, load_split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from dataset_builders import snapshot, write_text

from dfseg.data.split import (
    SplitError,
    dataset_fingerprint,
    load_split,
    split_dataset,
    validate_ratios,
)
from dfseg.data.stratify import assign_splits, largest_remainder
from dfseg.structures import Dataset, ImageAnnotation


def _image(root: Path, name: str, labels: list[int]) -> ImageAnnotation:
    n = len(labels)
    boxes = np.tile(np.array([[1, 1, 5, 5]], np.float32), (n, 1))
    return ImageAnnotation(root / "images" / name, 10, 10, np.array(labels, np.int64), boxes)


def _dataset(root: Path, seed: int = 0, backgrounds: int = 10) -> Dataset:
    """60 labelled images over 3 common classes, a rare class in 3 images, one class in 1."""
    rng = np.random.default_rng(seed)
    images = []
    for k in range(60):
        labels = rng.choice(3, size=int(rng.integers(1, 4))).tolist()
        if k in (5, 25, 45):
            labels.append(3)
        if k == 30:
            labels.append(4)
        images.append(_image(root, f"{k:03d}.jpg", labels))
    images += [_image(root, f"bg{k:02d}.jpg", []) for k in range(backgrounds)]
    return Dataset(root, "yolo", ["a", "b", "c", "rare", "single"], images)


@pytest.mark.parametrize(
    ("ratios", "message"),
    [
        ((0.8, 0.3, 0.0), "add up to 1"),
        ((1.1, -0.1, 0.0), ">= 0"),
        ((0.0, 0.5, 0.5), "train ratio must be > 0"),
        ((0.8, 0.2), "expected 3 ratios"),
        ((float("nan"), 0.5, 0.5), ">= 0"),
    ],
)
def test_bad_ratios_are_clear_errors(ratios: tuple[float, ...], message: str) -> None:
    with pytest.raises(SplitError, match=message):
        validate_ratios(ratios)


def test_split_is_deterministic_and_seed_dependent(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path / "data")
    split_dataset(dataset, tmp_path / "a", (0.6, 0.2, 0.2), seed=3)
    split_dataset(dataset, tmp_path / "b", (0.6, 0.2, 0.2), seed=3)
    split_dataset(dataset, tmp_path / "c", (0.6, 0.2, 0.2), seed=4)
    for name in ("train.csv", "val.csv", "test.csv"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
    assert (tmp_path / "a" / "val.csv").read_text() != (tmp_path / "c" / "val.csv").read_text()


def test_every_class_with_enough_images_reaches_every_split(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path)
    for seed in range(5):
        report = split_dataset(dataset, tmp_path / f"s{seed}", (0.6, 0.2, 0.2), seed=seed)
        for row in report.classes[:4]:  # "rare" is in exactly 3 images: one per split
            assert min(row.images.values()) >= 1, (seed, row)
        assert sum(report.classes[4].images.values()) == 1
        missing = [s for s, n in report.classes[4].images.items() if n == 0]
        assert report.notes == [
            f"class 'single' has no image in the {' or '.join(missing)} split (only 1 image)"
        ]
        total = sum(report.counts.values())
        assert report.actual_ratios == {s: round(n / total, 4) for s, n in report.counts.items()}


def test_counts_follow_ratios_and_backgrounds_fill_up(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path)
    report = split_dataset(dataset, tmp_path / "s", (0.6, 0.2, 0.2), seed=0)
    assert sum(report.counts.values()) == 70
    assert sum(report.backgrounds.values()) == 10
    for name, expected in zip(("train", "val", "test"), (42, 14, 14), strict=True):
        assert abs(report.counts[name] - expected) <= 2
    dropped = split_dataset(dataset, tmp_path / "n", (0.6, 0.2, 0.2), ignore_negatives=True)
    assert sum(dropped.counts.values()) == 60 and dropped.dropped_backgrounds == 10
    assert sum(dropped.backgrounds.values()) == 0


def test_zero_test_ratio_writes_an_empty_test_list(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path)
    report = split_dataset(dataset, tmp_path / "s", (0.8, 0.2, 0.0))
    assert report.counts["test"] == 0
    assert (tmp_path / "s" / "test.csv").read_text().strip() == "image"
    assert load_split(tmp_path / "s", dataset)["test"] == []


def test_files_refuse_overwrite_and_never_touch_the_dataset(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_text(root / "images" / "000.jpg", "x")
    dataset = _dataset(root)
    before = snapshot(root)
    report = split_dataset(dataset, tmp_path / "s", (0.7, 0.3, 0.0), seed=1)
    assert snapshot(root) == before
    info = json.loads((tmp_path / "s" / "split.json").read_text())
    assert info["seed"] == 1 and info["ratios"] == {"train": 0.7, "val": 0.3, "test": 0.0}
    assert info["counts"] == report.counts
    assert info["fingerprint"] == dataset_fingerprint(dataset) == report.fingerprint
    with pytest.raises(SplitError, match=r"already exist.*--overwrite"):
        split_dataset(dataset, tmp_path / "s", (0.7, 0.3, 0.0))
    split_dataset(dataset, tmp_path / "s", (0.5, 0.5, 0.0), overwrite=True)
    assert json.loads((tmp_path / "s" / "split.json").read_text())["ratios"]["val"] == 0.5


def test_load_split_round_trip_and_errors(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path / "data")
    split_dataset(dataset, tmp_path / "s", (0.6, 0.2, 0.2), seed=0)
    loaded = load_split(tmp_path / "s", dataset)
    csv_paths = (tmp_path / "s" / "val.csv").read_text().split()[1:]
    assert [str(im.image_path.relative_to(dataset.root)) for im in loaded["val"]] == csv_paths
    all_loaded = [im.image_path for images in loaded.values() for im in images]
    assert sorted(all_loaded) == sorted(im.image_path for im in dataset.images)

    smaller = Dataset(dataset.root, "yolo", dataset.class_names, dataset.images[1:])
    with pytest.raises(SplitError, match=r"not in the dataset.*images/000\.jpg.*--overwrite"):
        load_split(tmp_path / "s", smaller)
    write_text(tmp_path / "s" / "test.csv", "image\n" + csv_paths[0] + "\n")
    with pytest.raises(SplitError, match=r"listed in both val\.csv and test\.csv"):
        load_split(tmp_path / "s", dataset)
    (tmp_path / "s" / "train.csv").unlink()
    with pytest.raises(SplitError, match=r"train\.csv does not exist"):
        load_split(tmp_path / "s", dataset)


def test_iterative_stratification_keeps_class_proportions() -> None:
    rng = np.random.default_rng(0)
    frequencies = np.array([0.5, 0.2, 0.05, 0.02])
    label_sets = [np.flatnonzero(rng.random(4) < frequencies) for _ in range(2000)]
    assignment, too_rare = assign_splits(label_sets, 4, (0.7, 0.2, 0.1), seed=0)
    assert too_rare == []
    for c in range(4):
        holders = np.array([c in s for s in label_sets])
        shares = np.bincount(assignment[holders], minlength=3) / holders.sum()
        np.testing.assert_allclose(shares, [0.7, 0.2, 0.1], atol=0.03)
    shares = np.bincount(assignment, minlength=3) / len(assignment)
    np.testing.assert_allclose(shares, [0.7, 0.2, 0.1], atol=0.01)


def test_largest_remainder_adds_up() -> None:
    counts = largest_remainder(np.array([0.7, 0.2, 0.1]), 85)
    assert counts.sum() == 85 and abs(counts[0] - 59.5) <= 1
    assert largest_remainder(np.array([1.0, 0.0, 0.0]), 3).tolist() == [3, 0, 0]


@pytest.mark.shared
def test_split_real_dataset(shared_data_dir: Path, tmp_path: Path) -> None:
    from dfseg.data.reading import read_dataset

    dataset = read_dataset(shared_data_dir / "fruits-nuts-coco", "coco")
    report = split_dataset(dataset, tmp_path, (0.7, 0.2, 0.1), seed=0)
    assert sum(report.counts.values()) == len(dataset.images)
    assert all(min(row.images.values()) >= 1 for row in report.classes)
    loaded = load_split(tmp_path, dataset)
    assert {k: len(v) for k, v in loaded.items()} == report.counts


def test_split_sizes_follow_the_ratios_even_when_classes_cannot_all_be_everywhere(
    tmp_path: Path,
) -> None:
    """20 images of 10 classes at 0.7/0.2/0.1: putting every class in every split had made it
    8/7/5 images (seed 1). The sizes now follow the ratios and the report names what a split
    lacks."""
    rng = np.random.default_rng(1)
    images = [
        _image(tmp_path, f"{k:03d}.jpg", rng.choice(10, size=2, replace=True).tolist())
        for k in range(20)
    ]
    dataset = Dataset(tmp_path, "yolo", [f"c{k}" for k in range(10)], images)
    for seed in range(3):
        report = split_dataset(dataset, tmp_path / f"s{seed}", (0.7, 0.2, 0.1), seed=seed)
        assert report.counts == {"train": 14, "val": 4, "test": 2}, seed
        assert report.actual_ratios == {"train": 0.7, "val": 0.2, "test": 0.1}
        lacking = {
            row.name for row in report.classes
            if any(row.images[s] == 0 for s in ("train", "val", "test"))
        }  # fmt: skip
        noted = {note.split("'")[1] for note in report.notes}
        assert lacking == noted and lacking  # every class a split lacks is named
