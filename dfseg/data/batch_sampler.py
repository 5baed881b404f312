"""`TrainBatchSampler`: per-epoch shuffling, distributed sharding and batch-level multiscale.

It runs in the main process and yields, per batch, a list of `SampleRequest`s that fix every
random choice: the images, one input size for the whole batch (multiscale), mosaic partners and
augmentation seeds. Samples are then produced directly at the batch's size, so images, boxes
(normalised, unchanged by the size) and masks agree without resizing a collated batch, and
DataLoader workers (persistent or not, any number) produce the same batch for the same seed.

Epoch state comes from the dataset (`InstanceDataset.set_epoch`), read when iteration starts.
Distributed training: every rank uses the same permutation (seeded by seed and epoch), padded by
repetition to a multiple of `world_size`, and takes every `world_size`-th image from `rank`; all
ranks therefore run the same number of batches, and each batch has the same input size on every
rank (the size is drawn from seed, epoch and batch number only).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

from dfseg.data.dataset import InstanceDataset, SampleRequest
from dfseg.data.repeat_factors import repeat_indices, repeated_length

SIZE_STRIDE = 32


def multiscale_sizes(
    base_hw: tuple[int, int], scale_range: tuple[float, float], stride: int = SIZE_STRIDE
) -> list[tuple[int, int]]:
    """Input sizes for batch-level multiscale.

    Args:
        base_hw: (height, width) base input size.
        scale_range: (low, high) fractions of the base size.
        stride: sizes are multiples of it.

    Returns:
        Sorted (height, width) sizes: the base size times each factor that makes the longer side
        a multiple of `stride` within the range, the shorter side rounded to a multiple of
        `stride` (aspect ratio kept); always includes `base_hw`.
    """
    longer = max(base_hw)
    low = max(stride, math.ceil(longer * scale_range[0] / stride) * stride)
    high = max(low, math.floor(longer * scale_range[1] / stride) * stride)
    sizes = {tuple(base_hw)}
    for side in range(low, high + 1, stride):
        factor = side / longer
        height = max(stride, round(base_hw[0] * factor / stride) * stride)
        width = max(stride, round(base_hw[1] * factor / stride) * stride)
        sizes.add((height, width))
    return sorted((int(h), int(w)) for h, w in sizes)


class TrainBatchSampler(Sampler[list[SampleRequest]]):
    """Batches of `SampleRequest`s for `InstanceDataset` in train mode.

    Args:
        dataset: the training dataset (its main-process copy: `set_epoch` is read from it).
        batch_size: images per batch on this rank.
        seed: base seed; with the epoch it fixes order, sizes and augmentations.
        rank: this process's rank in distributed training.
        world_size: number of ranks.
        shuffle: shuffle the images each epoch.
        drop_last: drop a last incomplete batch (never the only batch of an epoch).
        repeat_factors: [N] per-image repeat factors over the dataset's images (repeat-factor
            sampling, `dfseg.data.repeat_factors`); None: every image once per epoch.
    """

    def __init__(
        self,
        dataset: InstanceDataset,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        drop_last: bool = True,
        repeat_factors: np.ndarray | None = None,
    ) -> None:
        if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(
                f"need batch_size >= 1 and 0 <= rank < world_size, got {batch_size}, {rank}, "
                f"{world_size}"
            )
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.repeat_factors = repeat_factors

    def _epoch_indices(self) -> np.ndarray:
        """The epoch's image indices before shuffling: the active ones, repeated by their
        factors when repeat-factor sampling is on."""
        active = self.dataset.active_indices()
        if self.repeat_factors is None or len(active) == 0:
            return active
        rng = np.random.default_rng([self.seed, self.dataset.epoch, 3])
        return repeat_indices(active, self.repeat_factors[active], rng)

    def _epoch_length(self) -> int:
        active = self.dataset.active_indices()
        if self.repeat_factors is None or len(active) == 0:
            return len(active)
        return repeated_length(self.repeat_factors[active])

    def _rank_indices(self) -> np.ndarray:
        """This rank's image indices for the current epoch, in order."""
        active = self._epoch_indices()
        if len(active) == 0:
            return active
        order = (
            np.random.default_rng([self.seed, self.dataset.epoch]).permutation(active)
            if self.shuffle
            else active
        )
        per_rank = math.ceil(len(order) / self.world_size)
        padded = np.resize(order, per_rank * self.world_size)  # repeats from the start
        return padded[self.rank :: self.world_size]

    def _num_batches(self, num_indices: int) -> int:
        if num_indices == 0:
            return 0
        if self.drop_last and num_indices >= self.batch_size:
            return num_indices // self.batch_size
        return math.ceil(num_indices / self.batch_size)

    def __len__(self) -> int:
        per_rank = math.ceil(self._epoch_length() / self.world_size)
        return self._num_batches(per_rank)

    def __iter__(self) -> Iterator[list[SampleRequest]]:
        dataset, epoch = self.dataset, self.dataset.epoch
        indices = self._rank_indices()
        sizes = [dataset.input_hw]
        if dataset.multiscale_enabled:
            sizes = multiscale_sizes(dataset.input_hw, dataset.settings.multiscale_range)
        for batch_number in range(self._num_batches(len(indices))):
            start = batch_number * self.batch_size
            size_rng = np.random.default_rng([self.seed, epoch, batch_number, 1])
            input_hw = sizes[int(size_rng.integers(len(sizes)))]
            yield [
                dataset.plan_sample(
                    int(index),
                    input_hw,
                    np.random.default_rng([self.seed, epoch, self.rank, start + offset, 2]),
                )
                for offset, index in enumerate(indices[start : start + self.batch_size])
            ]
