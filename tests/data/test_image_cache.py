"""`data.cache`: decoded training images in RAM or on disk give the same samples as decoding,
disk entries follow the file's content, and a RAM cache that would not fit is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from dfseg.config.train import AugmentConfig
from dfseg.data import image_cache
from dfseg.data.dataset import InstanceDataset, SampleRequest
from dfseg.data.image_cache import CacheError, ImageCache
from dfseg.data.reading import read_dataset
from dfseg.data.synthetic import generate_synthetic_dataset

INPUT_HW = (256, 256)


@pytest.fixture
def annotations(tmp_path: Path) -> list:
    """Six 900x1200 JPEGs: at 256 px they decode at 1/4 size."""
    root = generate_synthetic_dataset(
        tmp_path / "data", num_images=6, image_size=(900, 1200), seed=4
    )
    return read_dataset(root, "yolo", ["circle", "square", "triangle"]).images


def _samples(dataset: InstanceDataset, mosaic: bool) -> list[tuple[torch.Tensor, dict]]:
    dataset.set_epoch(0, total_epochs=10)
    partners = (1, 2, 3) if mosaic else ()
    requests = [SampleRequest(i, INPUT_HW, partners if i == 0 else (), 1000 + i) for i in range(6)]
    return [dataset[request] for request in requests]


@pytest.mark.parametrize("mode", ["ram", "disk"])
def test_cached_samples_equal_decoded_ones(annotations: list, tmp_path: Path, mode: str) -> None:
    settings = AugmentConfig(mosaic=1.0)
    plain = InstanceDataset(annotations, INPUT_HW, "segment", "train", settings)
    cached = InstanceDataset(annotations, INPUT_HW, "segment", "train", settings)
    cache = ImageCache(mode, tmp_path / "cache")  # type: ignore[arg-type]
    reductions = cached.cache_reductions()
    assert set(reductions) == {2}  # 1200 px at 256 x mosaic zoom 1.5: 1/2 suffices, 1/4 not
    cache.fill(annotations, reductions)
    cached.attach_cache(cache)
    for (image_a, target_a), (image_b, target_b) in zip(
        _samples(plain, True), _samples(cached, True), strict=True
    ):
        assert torch.equal(image_a, image_b)
        assert torch.equal(target_a["boxes"], target_b["boxes"])
    if mode == "disk":
        assert len(list((tmp_path / "cache").glob("*.npy"))) == 6


def test_a_changed_image_gets_a_new_disk_entry_and_is_never_served_stale(
    annotations: list, tmp_path: Path
) -> None:
    folder = tmp_path / "cache"
    first = ImageCache("disk", folder)
    first.fill(annotations, [2] * 6)
    before = sorted(p.name for p in folder.glob("*.npy"))
    changed = annotations[0].image_path
    original = cv2.imread(str(changed))
    cv2.imwrite(str(changed), 255 - original)  # same size, other content
    second = ImageCache("disk", folder)
    second.fill(annotations, [2] * 6)
    after = sorted(p.name for p in folder.glob("*.npy"))
    assert len(after) == 7 and set(before) < set(after)  # one new entry, the rest reused
    image, reduction = second.get(0)  # type: ignore[misc]
    fresh = cv2.imread(str(changed), cv2.IMREAD_REDUCED_COLOR_2)[:, :, ::-1]
    assert reduction == 2 and np.array_equal(image, fresh)
    stale, _ = first.get(0)  # type: ignore[misc]
    assert not np.array_equal(stale, image)  # the old entry still holds the old pixels


def test_a_ram_cache_that_would_not_fit_is_refused(
    annotations: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(image_cache, "available_memory", lambda: 1_000_000)
    with pytest.raises(CacheError, match=r"needs 0\.\d GB .* use data.cache: disk"):
        ImageCache("ram").fill(annotations, [1] * 6)


def test_an_image_gone_after_the_scan_is_left_to_the_dataset(
    annotations: list, tmp_path: Path
) -> None:
    moved = tmp_path / "moved.jpg"
    shutil.move(annotations[1].image_path, moved)
    cache = ImageCache("ram")
    cache.fill(annotations, [2] * 6)
    assert cache.get(1) is None and cache.get(0) is not None


def test_training_parts_fill_the_cache_the_project_asks_for(tmp_path: Path) -> None:
    from dfseg.config import load_project
    from dfseg.config.template import render_project_template
    from dfseg.data.project_dataset import read_project_dataset
    from dfseg.nn import build_model
    from dfseg.training.distributed import DistributedContext
    from dfseg.training.setup import build_training_parts

    generate_synthetic_dataset(tmp_path / "data", num_images=4, image_size=(300, 400), seed=5)
    project = tmp_path / "project.yaml"
    project.write_text(render_project_template(
        name="cached", task="detect", size="n", classes=["circle", "square", "triangle"],
        image_size=(256, 256),
    ))  # fmt: skip
    config = load_project(project, ["data.cache=disk", "train.batch_size=2"])
    images = read_project_dataset(config.data).dataset.images
    context = DistributedContext(device=torch.device("cpu"))
    model = build_model("n", 3, "detect", (256, 256))
    parts = build_training_parts(config, model, images, context, workers=0)
    cache = parts.train_dataset.cache
    assert cache is not None and len(cache.reductions) == 4
    assert len(list(config.cache_dir.glob("*.npy"))) == 4
    assert config.cache_dir == tmp_path / "runs" / "cached" / "cache"
