"""Synthetic demo data: deterministic, valid YOLO-seg, labels match what is drawn, caching."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from dataset_builders import snapshot, write_text

from dfseg.data.reading import read_dataset
from dfseg.data.synthetic import SyntheticDatasetError, generate_synthetic_dataset
from dfseg.ops.masks import segment_to_mask

SMALL = {"num_images": 12, "image_size": (96, 128), "background_fraction": 0.25}


def test_same_seed_same_bytes_and_prefix_stability(tmp_path: Path) -> None:
    generate_synthetic_dataset(tmp_path / "a", seed=3, **SMALL)
    generate_synthetic_dataset(tmp_path / "b", seed=3, **SMALL)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert len(files) == 2 * 12 + 2
    for relative in files:
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes()
    generate_synthetic_dataset(tmp_path / "c", seed=4, **SMALL)
    labels = [(tmp_path / d / "labels" / "00001.txt").read_text() for d in ("a", "c")]
    assert labels[0] != labels[1]
    generate_synthetic_dataset(tmp_path / "d", seed=3, **{**SMALL, "num_images": 5})
    for name in ("00000.jpg", "00004.jpg"):  # image i depends only on (seed, i)
        first = (tmp_path / "a" / "images" / name).read_bytes()
        assert first == (tmp_path / "d" / "images" / name).read_bytes()


def test_reads_back_cleanly_with_visible_disjoint_labels(tmp_path: Path) -> None:
    root = generate_synthetic_dataset(tmp_path / "s", num_images=24, seed=1, image_size=(128, 160))
    dataset = read_dataset(root, "yolo")
    assert dataset.class_names == ["circle", "square", "triangle", "star"]
    assert [i for i in dataset.issues if i.severity != "info"] == []
    assert len(dataset.images) == 24
    assert any(image.is_background for image in dataset.images)
    assert dataset.instance_counts().min() >= 1
    for image in dataset.images:
        pixels = cv2.imread(str(image.image_path)).astype(np.float64)
        masks = [segment_to_mask(s, image.height, image.width) for s in image.segments]
        if not masks:
            continue
        overlap = (np.sum(masks, axis=0) > 1).sum()
        assert overlap <= 0.02 * sum(int(m.sum()) for m in masks)  # visible parts are disjoint
        for mask in masks:
            assert mask.sum() >= 40  # learnable: no crumbs
            inner = cv2.erode(mask, np.ones((3, 3), np.uint8)).astype(bool)
            if inner.sum() >= 10:  # one flat colour (plus noise) under each label
                assert pixels[inner].std(axis=0).max() < 20


def test_reuse_overwrite_and_refusal(tmp_path: Path) -> None:
    root = generate_synthetic_dataset(tmp_path / "s", **SMALL)
    before = snapshot(root)
    generate_synthetic_dataset(root, **SMALL)  # same parameters: reused as is
    assert snapshot(root) == before
    with pytest.raises(SyntheticDatasetError, match="other parameters"):
        generate_synthetic_dataset(root, seed=9, **SMALL)
    generate_synthetic_dataset(root, seed=9, overwrite=True, **SMALL)
    assert snapshot(root) != before
    foreign = tmp_path / "mine"
    write_text(foreign / "notes.txt", "keep me")
    with pytest.raises(SyntheticDatasetError, match="not a dfseg synthetic dataset"):
        generate_synthetic_dataset(foreign, overwrite=True, **SMALL)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": ("circle", "blob")}, "classes must be some of"),
        ({"image_size": (16, 64)}, "sides must be >= 32"),
        ({"num_images": 0}, "num_images must be >= 1"),
        ({"min_object_size": 2}, "min_object_size"),
        ({"background_fraction": 1.0}, "background_fraction"),
    ],
)
def test_bad_parameters(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(SyntheticDatasetError, match=message):
        generate_synthetic_dataset(tmp_path / "s", **kwargs)
