"""OpenVINO throughput mode: images/s of a folder-sized stream of 1280x720 frames with one
stream (latency hint, batch 1: what `dfseg infer` does by default) against N streams (THROUGHPUT
hint, `--streams N`, a batch of N frames per call spread over N asynchronous infer requests),
at FP32 and at the device's default precision (bf16 where the CPU has it), end to end
(resize, inference, decoding). One table from one run; configurations take turns in blocks so
that background load affects them alike.

The model is bench_end_to_end's calibrated random D-FINE (80 classes), exported once to a
batch-1 OpenVINO IR and cached in `--workdir`; a batch-1 artifact is what throughput mode cuts
the batch into, so this is what a user's export gets.

    python benchmarks/bench_throughput.py --sizes n --threads 2 --streams 1 2 4 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from dfseg.runtime.predictor import Predictor, load_predictor

sys.path.insert(0, str(Path(__file__).parent))
from bench_end_to_end import exported_files, frames, make_checkpoint
from bench_learning import cpu_name


def images_per_second(predictor: Predictor, images: list[np.ndarray], batch: int) -> float:
    start = time.perf_counter()
    predictor.predict_batch(images, batch_size=batch)
    return len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["n"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--streams", nargs="+", type=int, default=[1, 2, 4])
    parser.add_argument("--image-size", type=int, default=640)
    parser.add_argument("--images", type=int, default=24, help="frames per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dfseg-bench-e2e"))
    args = parser.parse_args()

    images = frames(args.images)
    print(f"CPU: {cpu_name()}, {args.threads} threads, {args.image_size} px, ", end="")
    print(f"{args.images} frames of 1280x720 per round, median of {args.rounds} rounds")
    print("| size | precision | streams | batch | images/s | ms per image | vs 1 stream |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes:
        checkpoint = make_checkpoint(size, "detect", args.image_size, args.workdir / size)
        model = exported_files(checkpoint)["openvino"]
        for precision in ("fp32", "default"):
            runners: dict[int, Predictor] = {}
            for streams in args.streams:
                runners[streams] = load_predictor(
                    model, threads=args.threads, precision=precision, conf=0.3,
                    streams=None if streams == 1 else streams,
                )  # fmt: skip
                runners[streams].predict_batch(images[:streams], batch_size=streams)  # warm-up
            rates: dict[int, list[float]] = {streams: [] for streams in runners}
            for _ in range(args.rounds):
                for streams, predictor in runners.items():
                    rates[streams].append(images_per_second(predictor, images, streams))
            base = statistics.median(rates[args.streams[0]])
            for streams, values in rates.items():
                rate = statistics.median(values)
                resolved = runners[streams].backend.info.get("precision", precision)
                print(
                    f"| {size} | {resolved} | {streams} | {streams} | {rate:.2f} | "
                    f"{1000 / rate:.1f} | {rate / base:.2f}x |"
                )


if __name__ == "__main__":
    main()
