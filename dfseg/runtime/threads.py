"""How many CPU threads a command uses, and why.

On a machine whose cores are taken by another process, torch's default (one thread per core,
OpenMP threads spinning while they wait) collapses: threads spin-wait for each other while the
scheduler gives their core to the other process. `benchmarks/bench_threads.py` measured on 2
cores (Intel Xeon, AMX) next to a busy process: training 1.25 img/s with torch's default against
3.0 with one thread, inference 228 against 152 ms per image. So:

- A command uses one thread per core that other processes leave free right now (measured over a
  quarter of a second from /proc/stat, else the load average), at least one.
- Waiting stays as torch has it (spinning): `OMP_WAIT_POLICY=PASSIVE` would protect a run from
  load that arrives after it started, but cost 40% on an idle machine (training 5.7 -> 3.3 img/s,
  inference 89 -> 140 ms), the common case. Instead a training run whose epoch falls to under a
  third of its best speed samples the cores again and drops threads (`adapt_threads`).

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


def adapt_threads(current: int) -> ThreadChoice | None:
    """Fewer threads when other processes now keep cores busy (sampled again); None when
    `current` still fits the free cores."""
    choice = choose_threads(None)
    return choice if choice.threads < current else None


def collapse_hint(images_per_second: float, best: float) -> str | None:
    """A hint when throughput fell to under a third of the run's best (cores taken by another
    process); None otherwise."""
    if best <= 0 or images_per_second >= best / 3:
        return None
    return (
        f"throughput fell to {images_per_second:.2f} img/s from {best:.2f}: another process may "
        f"be using the cores; set {THREADS_VARIABLE}=1 (or fewer threads), or start dfseg with "
        f"OMP_WAIT_POLICY=PASSIVE, if this goes on"
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
