"""CPU latency of the D-FINE eval forward per size, before and after `deploy()`.

Median wall time of batch-1 forwards under `torch.inference_mode`, FLOPs counted by torch's
FlopCounterMode (2 per multiply-accumulate) and the achieved GFLOP/s. Variants take turns in
blocks so that background load affects them alike.

Weights: randomly initialised models with batch-norm statistics set from random images
(untrained default statistics shrink activations into denormals, which are 10-100x slower on
CPU and would make the numbers meaningless). `--weights-dir` loads `<dir>/<size>/checkpoint.pth`
instead when present (e.g. ../shared/reference/dfine).

    python benchmarks/bench_model_latency.py --sizes n s --threads 2 --repeats 20
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from dfseg.nn import DFine, build_model
from dfseg.nn.checkpoint import load_checkpoint


def calibrated_model(
    size: str, image_size: int, weights_dir: Path | None, num_queries: int = 300
) -> DFine:
    """A model with realistic activation scales (see module docstring), in eval mode."""
    torch.manual_seed(0)
    model = build_model(size, 80, image_size=(image_size, image_size), num_queries=num_queries)
    checkpoint = weights_dir / size / "checkpoint.pth" if weights_dir else None
    if checkpoint is not None and checkpoint.is_file():
        load_checkpoint(model, checkpoint)
        return model.eval()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None
            module.reset_running_stats()
    with torch.no_grad():
        model.train()(torch.rand(2, 3, image_size, image_size))
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_var.clamp_(min=0.3)
    return model.eval()


def count_gflops(model: DFine, images: torch.Tensor) -> float:
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(images)
    return counter.get_total_flops() / 1e9


def interleaved_medians(
    runners: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int,
    block: int = 5,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Median seconds per runner. Runners take turns in blocks of `block` timed runs, each
    block after one untimed run: background load drifts alike for all, while each block sees
    warm caches as a deployed model would."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    with torch.inference_mode():
        for _ in range(warmup):
            for run in runners.values():
                run()
        for _ in range(max(1, repeats // block)):
            for name, run in runners.items():
                run()
                for _ in range(block):
                    start = clock()
                    run()
                    times[name].append(clock() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def variants_for(size: str, args: argparse.Namespace) -> dict[str, tuple[DFine, torch.Tensor]]:
    """Model variants to time, each with its (NCHW) input."""
    images = torch.rand(1, 3, args.image_size, args.image_size)
    make = lambda: calibrated_model(size, args.image_size, args.weights_dir)  # noqa: E731
    variants = {"eval": (make(), images), "deploy()": (make().deploy(), images)}
    if size in args.channels_last:
        last = images.contiguous(memory_format=torch.channels_last)
        eval_last = make().to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        variants["eval, channels_last"] = (eval_last, last)
        variants["deploy(channels_last)"] = (make().deploy(channels_last=True), images)
    variants["deploy(fuse_backbone, channels_last)"] = (
        make().deploy(fuse_backbone=True, channels_last=True),
        images,
    )
    return variants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["n", "s"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=640)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--weights-dir", type=Path, default=None)
    parser.add_argument("--channels-last", nargs="*", default=["n"], help="sizes to also run NHWC")
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="wall: latency; cpu: process CPU time per forward, which with --threads 1 barely "
        "depends on other load on the machine (a busy shared machine makes wall times useless)",
    )
    parser.add_argument(
        "--fuse-backbone", action="store_true", help="also deploy(fuse_backbone=True)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    side = args.image_size
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    setting = f"{args.threads} threads, batch 1, {side}x{side}, {args.clock} clock"
    print(f"torch {torch.__version__}, {setting}")
    print(f"{'size':<5}{'variant':<38}{'median ms':>10}{'GFLOPs':>9}{'GFLOP/s':>9}")
    for size in args.sizes:
        variants = variants_for(size, args)
        gflops = count_gflops(*variants["eval"])
        runners = {name: (lambda m=m, x=x: m(x)) for name, (m, x) in variants.items()}
        medians = interleaved_medians(runners, args.repeats, args.warmup, clock=clock)
        for name, seconds in medians.items():
            print(
                f"{size:<5}{name:<38}{seconds * 1e3:>10.1f}{gflops:>9.2f}{gflops / seconds:>9.1f}"
            )


if __name__ == "__main__":
    main()
