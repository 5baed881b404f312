"""Training and inference speed on an idle machine and next to a busy process, for several
thread policies side by side:

- `default`: torch's own (one thread per core, OpenMP threads spin while they wait);
- `chosen`: one thread per core the other processes leave free (`dfseg.runtime.threads`),
  waiting as torch does;
- `passive`: chosen threads and `OMP_WAIT_POLICY=PASSIVE` (waiting threads sleep at once);
- `short-spin`: chosen threads and `GOMP_SPINCOUNT` lowered (spin briefly, then sleep).

    python benchmarks/bench_threads.py                 # prints a table and the CPU model
    python benchmarks/bench_threads.py --passes 3 --json out.json

Every number is measured in a fresh process (OpenMP reads its settings once, at start-up): D-FINE-N
training steps (forward, criterion, backward, AdamW) on batches of 2 generated images at 256 px,
and eval-mode inference at 640 px, batch 1. The busy process is what a second training or export
does: torch matrix products on all cores with torch's default threads.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BUSY_CODE = "import torch\na = torch.randn(768, 768)\nwhile True:\n    a = (a @ a).tanh()\n"


POLICIES = ("default", "chosen", "passive", "short-spin")
POLICY_ENV: dict[str, dict[str, str]] = {
    "default": {},
    "chosen": {},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "short-spin": {"GOMP_SPINCOUNT": "10000"},
}


def train_rate(seconds: float) -> float:
    """Images per second of D-FINE-N training steps (after two warm-up steps)."""
    import torch

    from dfseg.nn import build_model
    from dfseg.training.criterion import build_criterion

    torch.manual_seed(0)
    model = build_model("n", 3, "detect", (256, 256)).train()
    criterion = build_criterion(3, "detect")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = torch.rand(2, 3, 256, 256)
    targets = [
        {"labels": torch.tensor([0, 1]), "boxes": torch.tensor([[0.3, 0.3, 0.2, 0.2],
                                                                 [0.6, 0.6, 0.3, 0.2]])}
        for _ in range(2)
    ]  # fmt: skip

    def step() -> None:
        losses = criterion(model(images, targets), targets)
        optimizer.zero_grad()
        torch.stack(list(losses.values())).sum().backward()
        optimizer.step()

    for _ in range(2):
        step()
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or done < 2:
        step()
        done += 2
    return done / (time.perf_counter() - started)


def infer_ms(seconds: float) -> float:
    """Median milliseconds per 640x640 eval-mode forward pass of D-FINE-N (deployed)."""
    import torch

    from dfseg.nn import build_model

    model = build_model("n", 3, "detect", (640, 640)).deploy(fuse_backbone=True)
    image = torch.rand(1, 3, 640, 640)
    times = []
    with torch.inference_mode():
        model(image)
        started = time.perf_counter()
        while time.perf_counter() - started < seconds or len(times) < 3:
            tick = time.perf_counter()
            model(image)
            times.append((time.perf_counter() - tick) * 1000)
    return statistics.median(times)


def worker(kind: str, policy: str, seconds: float) -> dict[str, object]:
    """One measurement in this (fresh) process."""
    import torch

    from dfseg.runtime.threads import choose_threads

    torch.set_flush_denormal(True)
    if policy != "default":
        torch.set_num_threads(choose_threads(None).threads)
    value = train_rate(seconds) if kind == "train" else infer_ms(seconds)
    return {"kind": kind, "policy": policy, "threads": torch.get_num_threads(), "value": value}


def measure(kind: str, policy: str, busy: bool, seconds: float, passes: int) -> dict[str, object]:
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    for key in ("DFSEG_THREADS", "GOMP_SPINCOUNT", "OMP_NUM_THREADS"):
        env.pop(key, None)
    env.update(POLICY_ENV[policy])
    values, threads = [], 0
    for _ in range(passes):
        other = subprocess.Popen([sys.executable, "-c", BUSY_CODE]) if busy else None
        try:
            if other is not None:
                time.sleep(2.0)  # let it get going
            output = subprocess.run(
                [sys.executable, __file__, "--worker", kind, "--policy", policy,
                 "--seconds", str(seconds)],
                capture_output=True, text=True, env=env, check=True,
            ).stdout  # fmt: skip
        finally:
            if other is not None:
                other.kill()
                other.wait()
        result = json.loads(output.strip().splitlines()[-1])
        values.append(float(result["value"]))
        threads = int(result["threads"])
        time.sleep(1.0)  # the machine settles between passes
    return {
        "kind": kind, "policy": policy, "busy": busy, "threads": threads,
        "median": statistics.median(values), "passes": values,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=["train", "infer"])
    parser.add_argument("--policy", choices=POLICIES, default="chosen")
    parser.add_argument("--policies", nargs="+", choices=POLICIES, default=list(POLICIES))
    parser.add_argument("--seconds", type=float, default=20.0, help="Timed seconds per pass.")
    parser.add_argument("--passes", type=int, default=2, help="Fresh processes per number.")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.policy, args.seconds)))
        return
    from dfseg.runtime.threads import cpu_model

    rows = [
        measure(kind, policy, busy, args.seconds, args.passes)
        for kind in ("train", "infer")
        for busy in (False, True)
        for policy in args.policies
    ]
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores")
    print(f"{'what':<8}{'machine':<10}{'policy':<11}{'threads':>8}{'median':>12}  passes")
    for row in rows:
        unit = "img/s" if row["kind"] == "train" else "ms/img"
        print(
            f"{row['kind']:<8}{'busy' if row['busy'] else 'idle':<10}{row['policy']:<11}"
            f"{row['threads']:>8}{row['median']:>9.2f} {unit}  "
            + ", ".join(f"{v:.2f}" for v in row["passes"])  # type: ignore[attr-defined]
        )
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_model(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
