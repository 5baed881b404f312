"""Training-step throughput and peak memory on this CPU.

One training step = forward (train mode, denoising on) + D-FINE criterion + backward + AdamW, on
a batch of random images with a few boxes (and masks for segment), as `dfseg train` runs it
(glibc malloc tuned, denormals flushed). Every configuration runs in a fresh process so its peak
resident memory (ru_maxrss) is its own; steps are timed after warm-up and the median is reported.

    python benchmarks/bench_training.py                      # N and S at 640 and 320, batch 4
    python benchmarks/bench_training.py --sizes n --inputs 640 --task segment --threads 2
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def measure(size: str, image: int, batch: int, task: str, steps: int, threads: int) -> dict:
    import torch

    from dfseg.nn import build_model
    from dfseg.training.allocator import tune_glibc_malloc
    from dfseg.training.criterion import build_criterion
    from dfseg.training.optim import OptimizerSettings, build_optimizer

    tune_glibc_malloc()
    torch.set_flush_denormal(True)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    num_classes = 4
    model = build_model(size, num_classes, task, (image, image)).train()
    criterion = build_criterion(num_classes, task)
    optimizer = build_optimizer(model, OptimizerSettings(2e-4, 1e-4, 1e-4))
    images = torch.rand(batch, 3, image, image)
    targets = []
    for _ in range(batch):
        count = 5
        centres = torch.rand(count, 2) * 0.6 + 0.2
        sizes = torch.rand(count, 2) * 0.2 + 0.05
        target = {
            "labels": torch.randint(0, num_classes, (count,)),
            "boxes": torch.cat([centres, sizes], 1),
        }
        if task == "segment":
            masks = torch.zeros(count, image, image, dtype=torch.uint8)
            for k, (cx, cy, w, h) in enumerate(target["boxes"].tolist()):
                x1, y1 = int((cx - w / 2) * image), int((cy - h / 2) * image)
                x2, y2 = int((cx + w / 2) * image), int((cy + h / 2) * image)
                masks[k, y1:y2, x1:x2] = 1
            target["masks"] = masks
        targets.append(target)
    timings = []
    for step in range(steps + 2):
        started = time.perf_counter()
        losses = criterion(model(images, targets), targets)
        total = torch.stack(list(losses.values())).sum()
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        if step >= 2:  # the first steps allocate and warm caches
            timings.append(time.perf_counter() - started)
    seconds = statistics.median(timings)
    return {
        "size": size, "input": image, "batch": batch, "task": task, "threads": threads,
        "step_s": round(seconds, 3), "images_per_s": round(batch / seconds, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["n", "s"])
    parser.add_argument("--inputs", nargs="+", type=int, default=[640, 320])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--task", choices=["detect", "segment"], default="detect")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = measure(
            args.sizes[0], args.inputs[0], args.batch, args.task, args.steps, args.threads
        )
        print(json.dumps(result))
        return
    rows = []
    for size in args.sizes:
        for image in args.inputs:
            command = [
                sys.executable,
                __file__,
                "--child",
                "--sizes",
                size,
                "--inputs",
                str(image),
                "--batch",
                str(args.batch),
                "--task",
                args.task,
                "--steps",
                str(args.steps),
                "--threads",
                str(args.threads),
            ]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            rows.append(json.loads(output.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    header = ("size", "input", "batch", "task", "s/step", "img/s", "peak MiB")
    print("\n" + " ".join(f"{h:>8}" for h in header))
    for r in rows:
        values = (r["size"], r["input"], r["batch"], r["task"], r["step_s"], r["images_per_s"],
                  r["peak_rss_mib"])  # fmt: skip
        print(" ".join(f"{v:>8}" for v in values))


if __name__ == "__main__":
    main()
