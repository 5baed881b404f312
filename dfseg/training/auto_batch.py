"""`train.batch_size: auto`: the largest batch whose training step fits the device's memory.

Both devices are measured, not guessed: one training-mode forward (and backward) of the real model
at the real input size with batch 1 and with batch 2 gives the memory a step adds as a line
(fixed part, gradients included, + per-image part). The batch is what that line fits into
`MEMORY_SHARE` of the memory free now, less AdamW's two moments, capped at
`MAX_BATCH` and at the training set's size. CUDA reads the allocator's peak above what was
allocated before; CPU counts the bytes the forward saves for backward (times
`ACTIVATION_FACTOR`), as resident memory does not show what a reused allocation needs. Where
free memory cannot be read the batch falls back to `FALLBACK_BATCH`, saying so.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

import torch
from torch import nn

from dfseg.data.image_cache import available_memory

MEMORY_SHARE = 0.6  # CPU: leave room for the loader, evaluation and the rest of the machine
CUDA_MEMORY_SHARE = 0.85
MAX_BATCH = 64
FALLBACK_BATCH = 8
_cpu_available = available_memory  # one home: the image cache's reading of MemAvailable
ACTIVATION_FACTOR = 1.5  # measured: a fresh process peaks at 1.2-1.3x the saved bytes (N, S at 640)


@dataclass(frozen=True)
class BatchChoice:
    """The batch chosen and why (logged and shown in the training banner)."""

    batch_size: int
    reason: str


def choose_batch_size(
    model: nn.Module, input_hw: tuple[int, int], device: torch.device, train_images: int
) -> BatchChoice:
    """Probe `model` (left as it was found, gradients cleared) and pick the batch size."""
    cap = max(1, min(MAX_BATCH, train_images))
    probe = _cuda_peak if device.type == "cuda" else _cpu_peak
    free = _cuda_free(device) if device.type == "cuda" else _cpu_available()
    share = CUDA_MEMORY_SHARE if device.type == "cuda" else MEMORY_SHARE
    if free is None:
        return BatchChoice(min(FALLBACK_BATCH, cap), "auto: memory cannot be measured here")
    was_training = model.training
    buffers = {name: value.clone() for name, value in model.named_buffers()}  # BN statistics
    model.to(device).train()
    try:
        one, two = (probe(model, batch, input_hw, device) for batch in (1, 2))
    except (torch.cuda.OutOfMemoryError, RuntimeError) as exc:
        if "out of memory" not in str(exc).lower():
            raise
        return BatchChoice(1, "auto: even batch 2 does not fit; batch 1")
    finally:
        model.zero_grad(set_to_none=True)
        with torch.no_grad():  # the probe batches must not move the running statistics
            for name, value in model.named_buffers():
                value.copy_(buffers[name])
        model.train(was_training)
        _release(device)
    per_image = max(two - one, 1)
    moments = 2 * sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    budget = share * free - moments - max(one - per_image, 0)
    fits = int(budget // per_image)
    batch = max(1, min(cap, fits))
    reason = (
        f"auto: {per_image / 2**20:.0f} MiB per image at {input_hw[1]}x{input_hw[0]}, "
        f"{free / 2**30:.1f} GiB free on {device.type}: {fits} fit in {share:.0%}"
        + (f", capped at {cap}" if fits > cap else "")
    )
    return BatchChoice(batch, reason)


def _probe_targets(batch: int, device: torch.device) -> list[dict[str, torch.Tensor]]:
    """One labelled box per image, so the denoising queries run as in training."""
    return [
        {"labels": torch.zeros(1, dtype=torch.int64, device=device),
         "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2]], device=device)}
        for _ in range(batch)
    ]  # fmt: skip


def _probe_step(
    model: nn.Module, batch: int, input_hw: tuple[int, int], device: torch.device
) -> None:
    """One training-mode forward and backward."""
    images = torch.rand(batch, 3, *input_hw, device=device)
    outputs = model(images, _probe_targets(batch, device))
    loss = sum(value.float().mean() for value in _tensors(outputs) if value.requires_grad)
    loss.backward()  # type: ignore[union-attr]
    model.zero_grad(set_to_none=True)


def _tensors(value: object) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value] if value.is_floating_point() else []
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def _cuda_peak(
    model: nn.Module, batch: int, input_hw: tuple[int, int], device: torch.device
) -> int:
    """Bytes one probe step allocates above what was allocated before it."""
    _release(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    _probe_step(model, batch, input_hw, device)
    torch.cuda.synchronize(device)
    return int(torch.cuda.max_memory_allocated(device) - before)


def _cuda_free(device: torch.device) -> int | None:
    _release(device)
    free, _ = torch.cuda.mem_get_info(device)
    return int(free)


def _cpu_peak(model: nn.Module, batch: int, input_hw: tuple[int, int], device: torch.device) -> int:
    """Bytes a training step holds on CPU, estimated as `ACTIVATION_FACTOR` x the tensors the
    forward saves for backward (each storage once). The process's resident size cannot be used:
    the allocator keeps and reuses freed memory, so a second probe shows no growth."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = max(storages.get(storage.data_ptr(), 0), storage.nbytes())
        return tensor

    images = torch.rand(batch, 3, *input_hw, device=device)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(images, _probe_targets(batch, device))
    return int(ACTIVATION_FACTOR * sum(storages.values()))


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
