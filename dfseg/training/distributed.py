"""Devices and torch.distributed: one process per device, rank 0 writes, metrics gathered on it.

`dfseg train --devices N` re-launches itself through torchrun (`torchrun_command`); a process
started by torchrun (also multi-node) finds RANK/WORLD_SIZE/LOCAL_RANK in its environment and
joins the group (`init_distributed`): NCCL on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from dfseg.errors import DfsegError

T = TypeVar("T")


class DeviceError(DfsegError):
    """A device that does not exist here (cuda without a GPU, a GPU index out of range)."""


@dataclass(frozen=True)
class DistributedContext:
    """Where this process runs and which part of the work it owns."""

    device: torch.device
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(preference: str | None) -> torch.device:
    """`auto` (or None) picks CUDA when available, else CPU; explicit names are checked."""
    name = (preference or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {preference!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {preference!r} asked for, but no CUDA GPU is available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {preference!r}: only {torch.cuda.device_count()} GPU(s) are visible"
            )
    return device


def init_distributed(preference: str | None) -> DistributedContext:
    """Join the process group when launched by torchrun; otherwise a single-process context."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext(device=resolve_device(preference))
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    base = resolve_device(preference)
    if base.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=timedelta(minutes=30))
    return DistributedContext(
        device=device, rank=rank, local_rank=local_rank, world_size=world_size
    )


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def gather_to_main(value: T, context: DistributedContext) -> list[T] | None:
    """Every rank's `value` on rank 0 (in rank order); None on the other ranks."""
    if not context.is_distributed:
        return [value]
    gathered: list[Any] = [None] * context.world_size if context.is_main else []
    dist.gather_object(value, gathered if context.is_main else None, dst=0)
    return gathered if context.is_main else None


def broadcast_from_main(value: T, context: DistributedContext) -> T:
    """Rank 0's `value` on every rank (so all ranks take the same decisions, e.g. early stop)."""
    if not context.is_distributed:
        return value
    box: list[T] = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(context: DistributedContext) -> None:
    if context.is_distributed:
        dist.barrier()


def torchrun_command(num_processes: int, argv: list[str]) -> list[str]:
    """The command that runs `dfseg <argv>` in `num_processes` processes on this machine."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={num_processes}",
        "-m",
        "dfseg",
        *argv,
    ]
