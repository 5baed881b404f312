"""Repeat-factor sampling: factors from class frequencies, fixed epoch lengths, and the sampler
repeating rare-class images, on hand-made label sets and the synthetic dataset."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from pipeline_fixtures import make_synthetic_set

from dfseg.config.train import AugmentConfig
from dfseg.data.batch_sampler import TrainBatchSampler
from dfseg.data.dataset import InstanceDataset
from dfseg.data.repeat_factors import repeat_factors, repeat_indices, repeated_length

SIZES = [(50, 70), (300, 200), (128, 160), (77, 333), (160, 128)]


def test_factors_follow_lvis() -> None:
    # class 0 in 8 of 10 images, class 1 in 1, one background: t=0.5
    label_sets = [np.array([0])] * 7 + [np.array([0, 1]), np.array([0, 0]), np.array([])]
    factors = repeat_factors(label_sets, num_classes=2, threshold=0.5)
    rare = math.sqrt(0.5 / 0.1)
    np.testing.assert_allclose(factors, [1.0] * 7 + [rare, 1.0, 1.0])
    assert (repeat_factors(label_sets, 2, threshold=0.05) == 1).all()  # nothing that rare


def test_an_epoch_has_a_fixed_length_and_each_image_its_factor_on_average() -> None:
    indices = np.arange(6)
    factors = np.array([1.0, 1.0, 2.5, 1.2, 3.0, 1.0])
    length = repeated_length(factors)
    assert length == 6 + 3 + round(0.7)  # floors 1+1+2+1+3+1, fractions 0.5+0.2
    seen: Counter[int] = Counter()
    epochs = 2000
    for epoch in range(epochs):
        repeated = repeat_indices(indices, factors, np.random.default_rng([0, epoch]))
        assert len(repeated) == length
        counts = Counter(repeated.tolist())
        assert counts[4] == 3 and counts[2] in (2, 3)  # whole repeats always there
        seen.update(counts)
    means = np.array([seen[i] / epochs for i in range(6)])
    # 0.7 of fractional mass, one extra copy per epoch: drawn 0.5 : 0.2
    np.testing.assert_allclose(means, [1, 1, 2 + 5 / 7, 1 + 2 / 7, 3, 1], atol=0.03)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> InstanceDataset:
    synthetic = make_synthetic_set(tmp_path_factory.mktemp("rfs"), SIZES, seed=3)
    return InstanceDataset(synthetic.annotations, (64, 64), "detect", "train", AugmentConfig())


def test_the_sampler_repeats_images_by_their_factors(dataset: InstanceDataset) -> None:
    factors = np.ones(len(dataset.annotations))
    factors[0] = 3.0
    dataset.set_epoch(0, total_epochs=1)
    plain = TrainBatchSampler(dataset, batch_size=2, seed=0, drop_last=False)
    repeated = TrainBatchSampler(dataset, 2, seed=0, drop_last=False, repeat_factors=factors)
    counts = Counter(r.image_index for batch in repeated for r in batch)
    assert counts[0] == 3 and sum(counts.values()) == len(dataset.annotations) + 2
    assert len(list(repeated)) == len(repeated) == math.ceil((len(dataset.annotations) + 2) / 2)
    assert Counter(r.image_index for batch in plain for r in batch)[0] == 1


def test_training_parts_lay_the_schedule_out_for_the_repeated_epoch(tmp_path: Path) -> None:
    import torch

    from dfseg.config import load_project
    from dfseg.config.template import render_project_template
    from dfseg.data.synthetic import generate_synthetic_dataset
    from dfseg.nn import build_model
    from dfseg.training.distributed import DistributedContext
    from dfseg.training.setup import build_training_parts

    generate_synthetic_dataset(tmp_path / "data", num_images=12, image_size=(256, 256), seed=5)
    project = tmp_path / "project.yaml"
    project.write_text(render_project_template(
        name="rfs", task="detect", size="n", classes=["circle", "square", "triangle"],
        image_size=(256, 256),
    ))  # fmt: skip
    config = load_project(project, ["train.batch_size=2", "train.repeat_threshold=0.9"])
    from dfseg.data.project_dataset import read_project_dataset

    images = read_project_dataset(config.data).dataset.images
    model = build_model("n", 3, "detect", (256, 256))
    context = DistributedContext(device=torch.device("cpu"))
    parts = build_training_parts(config, model, images, context, workers=0)
    label_sets = [image.labels for image in images]
    expected = repeated_length(repeat_factors(label_sets, 3, 0.9))
    assert expected > len(images)  # some class is in fewer than 90% of the images
    assert parts.steps_per_epoch == len(parts.train_loader) == math.ceil(expected / 2)
