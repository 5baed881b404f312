"""How many CPU threads a command uses, and why.

On a machine whose cores are taken by another process, torch's default (one thread per core,
OpenMP threads spinning while they wait) collapsed training from 2.1 to 0.2 img/s and inference
from 87 to 629 ms per image on 2 cores (benchmarks/bench_threads.py measures it): threads that
spin-wait for each other while the scheduler gives their core to the other process. Two things
avoid it:

- `OMP_WAIT_POLICY=PASSIVE` (set before torch is imported, see `prefer_passive_waiting`): waiting
  OpenMP threads sleep instead of spinning, so a pre-empted thread costs its partners nothing.
- Fewer threads when other processes keep cores busy right now (measured over a quarter of a
  second from /proc/stat, else the load average): one thread per core not already in use, at
  least one.

`DFSEG_THREADS` (or a command's --threads) always wins.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

THREADS_VARIABLE = "DFSEG_THREADS"
# A core counts as taken when other processes keep it this busy (fraction of its time).
BUSY_CORE_LOAD = 0.75
SAMPLE_SECONDS = 0.25


@dataclass(frozen=True)
class ThreadChoice:
    """How many threads to use and why (the start banner says it)."""

    threads: int
    reason: str

    def describe(self) -> str:
        return f"{self.threads} thread{'s' if self.threads != 1 else ''} ({self.reason})"


def prefer_passive_waiting() -> None:
    """Make OpenMP threads sleep, not spin, while they wait (unless the user chose otherwise).
    Must run before torch (or any OpenMP runtime) is loaded: the CLI's entry point calls it."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def choose_threads(requested: int | None, cores: int | None = None) -> ThreadChoice:
    """The thread count for a command.

    Args:
        requested: DFSEG_THREADS or --threads (None: decide from the machine).
        cores: CPU cores available to this process (None: read from the OS).
    """
    available = cores or _available_cores()
    if requested is not None:
        return ThreadChoice(int(requested), f"{THREADS_VARIABLE} / --threads")
    load = _busy_cores()
    busy = int(load / BUSY_CORE_LOAD) if load is not None else 0
    free = max(1, available - busy)
    if free < available:
        return ThreadChoice(
            free,
            f"other processes keep {load:.1f} of {available} cores busy; set "
            f"{THREADS_VARIABLE} to choose",
        )
    return ThreadChoice(available, f"{available} cores, free")


def collapse_hint(images_per_second: float, best: float) -> str | None:
    """A hint when throughput fell to under a third of the run's best (cores taken by another
    process); None otherwise."""
    if best <= 0 or images_per_second >= best / 3:
        return None
    return (
        f"throughput fell to {images_per_second:.2f} img/s from {best:.2f}: another process may "
        f"be using the cores; set {THREADS_VARIABLE}=1 (or fewer threads) if this goes on"
    )


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _busy_cores(sample_s: float = SAMPLE_SECONDS) -> float | None:
    """Cores kept busy by other processes now: /proc/stat over `sample_s` (this process waits
    meanwhile), else the 1-minute load average; None when neither can be read."""
    first = _cpu_times()
    if first is not None:
        time.sleep(sample_s)
        second = _cpu_times()
        if second is not None and second[1] > first[1]:
            busy, total = second[0] - first[0], second[1] - first[1]
            return busy / total * _online_cores()
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def _online_cores() -> int:
    return os.cpu_count() or 1


def cpu_model() -> str:
    """The CPU's model name (as lscpu shows it), or "CPU" when it cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU"
