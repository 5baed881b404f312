"""DataLoader construction: seeded workers, persistent workers, pinned memory only for CUDA.

Randomness: every augmentation decision is derived from (seed, epoch, position) by
`TrainBatchSampler`, so batches do not depend on the number of workers or on which worker made
which sample. Worker processes are still seeded (from the base seed and the rank through the
loader's generator) so that any other library randomness in them is reproducible too.
"""

from __future__ import annotations

import random

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader

from dfseg.data.batch_sampler import TrainBatchSampler
from dfseg.data.collate import collate_batch
from dfseg.data.dataset import InstanceDataset


def seed_worker(worker_id: int) -> None:
    """`worker_init_fn`: seed numpy and `random` from torch's per-worker seed."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def _make_cv2_fork_safe(num_workers: int) -> None:
    """Switch OpenCV's thread pool off before DataLoader workers are forked.

    A worker forked while the parent's OpenCV pool exists inherits the pool's locks but not its
    threads; the next pool operation in the worker (even `cv2.setNumThreads`) can then wait
    forever (seen here as workers hanging in `pthread_cond_destroy`). Without a pool, cv2 runs
    single-threaded in the workers, which is what parallel workers want anyway. This changes
    OpenCV's setting for the whole (training) process.
    """
    if num_workers > 0:
        cv2.setNumThreads(0)


def _generator(seed: int, rank: int) -> torch.Generator:
    generator = torch.Generator()
    generator.manual_seed(int(np.random.SeedSequence([seed, rank]).generate_state(1)[0]))
    return generator


def _pin_memory(device: str | torch.device) -> bool:
    return torch.device(device).type == "cuda"


def build_train_loader(
    dataset: InstanceDataset,
    batch_size: int,
    num_workers: int,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    device: str | torch.device = "cpu",
    repeat_factors: np.ndarray | None = None,
) -> DataLoader:
    """Training DataLoader over `TrainBatchSampler` (shuffled, sharded, multiscale batches).

    Call `dataset.set_epoch(epoch, total_epochs)` before iterating each epoch; workers are
    persistent (kept between epochs), which is safe because the sampler sends them everything
    that depends on the epoch. With workers, OpenCV threading is switched off in this process
    (see `_make_cv2_fork_safe`).

    Args:
        dataset: an `InstanceDataset` in train mode.
        batch_size: images per batch on this rank.
        num_workers: worker processes (0: load in the main process).
        seed: base seed of order, sizes and augmentations.
        rank: this process's rank (distributed training).
        world_size: number of ranks.
        device: the training device; memory is pinned only for CUDA.
        repeat_factors: per-image repeat factors (repeat-factor sampling), or None.

    Returns:
        A DataLoader yielding (images [B, 3, H, W] float32, list of target dicts).
    """
    if dataset.mode != "train":
        raise ValueError("build_train_loader needs a dataset in train mode")
    sampler = TrainBatchSampler(
        dataset, batch_size, seed, rank, world_size, repeat_factors=repeat_factors
    )
    _make_cv2_fork_safe(num_workers)
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_batch,
        pin_memory=_pin_memory(device),
        persistent_workers=num_workers > 0,
        worker_init_fn=seed_worker,
        generator=_generator(seed, rank),
    )


def build_eval_loader(
    dataset: InstanceDataset,
    batch_size: int,
    num_workers: int,
    device: str | torch.device = "cpu",
) -> DataLoader:
    """Evaluation DataLoader: dataset order, no augmentation, persistent workers.

    In distributed evaluation, give each rank its own slice of the annotations.

    Returns:
        A DataLoader yielding (images [B, 3, H, W] float32, list of target dicts with
        `resize_params`).
    """
    _make_cv2_fork_safe(num_workers)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_batch,
        pin_memory=_pin_memory(device),
        persistent_workers=num_workers > 0,
        worker_init_fn=seed_worker,
    )
