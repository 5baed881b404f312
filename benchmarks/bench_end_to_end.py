"""End-to-end CPU latency (pre-processing + inference + post-processing) of D-FINE N and S per
backend: torch, onnxruntime, OpenVINO FP32 and OpenVINO at the device's default precision
(bf16 on CPUs that have it), batch 1, one table from one run.

Each size gets a checkpoint (randomly initialised, batch-norm statistics calibrated on random
images so activations have realistic scales; 80 classes) that is exported with `dfseg export`
once and cached in `--workdir`. The input is a 1280x720 BGR frame (a generated shapes image),
so the resize to the network input is part of the pre-processing. `--queries` is the trained
decoder's query count (100, the project default; 300 is D-FINE's); `--attention-sum concat levels`
times the exports of both deformable-attention layouts (`export.attention_sum`). Backends take turns
in blocks of runs so that background load on a shared machine affects them alike; the table
shows the median and p90 of the total and the median of each stage. The last column compares the
detections above 0.3 with torch's (same images) using the export parity check.

    python benchmarks/bench_end_to_end.py --sizes n s --threads 2 --runs 40
    python benchmarks/bench_end_to_end.py --sizes n --attention-sum concat levels --skip torch
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from dfseg.config.choices import AttentionSum
from dfseg.data.synthetic import SyntheticParams, render_image
from dfseg.export.api import export_model
from dfseg.export.options import DEFAULT_ATTENTION_SUM, ExportOptions, artifact_folder_name
from dfseg.export.parity import compare_outputs, tolerance_for
from dfseg.export.source import ExportSource
from dfseg.runtime.predictor import Predictor, load_predictor
from dfseg.runtime.preprocess import preprocess_batch
from dfseg.structures.manifest import ArtifactManifest, ModelDescription, Preprocessing

sys.path.insert(0, str(Path(__file__).parent))
from bench_model_latency import calibrated_model

NUM_CLASSES = 80
STAGES = ("preprocess", "inference", "postprocess")


def make_checkpoint(
    size: str, task: str, image_size: int, folder: Path, num_queries: int = 300
) -> Path:
    """A dfseg best.pt of a calibrated random model (reused when present)."""
    path = folder / "best.pt"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    model = calibrated_model(size, image_size, None, num_queries)
    if task == "segment":  # calibrated_model builds detection models; rebuild with a mask head
        from dfseg.nn import build_model

        segment = build_model(
            size, NUM_CLASSES, task="segment", image_size=(image_size,) * 2,
            num_queries=num_queries,
        )  # fmt: skip
        segment.load_state_dict(model.state_dict(), strict=False)
        model = segment.eval()
    manifest = ArtifactManifest(
        format="checkpoint",
        model=ModelDescription(
            size=size,
            num_classes=NUM_CLASSES,
            task=task,
            image_size=(image_size, image_size),
            num_queries=num_queries,
        ),
        class_names=[f"class{i}" for i in range(NUM_CLASSES)],
        preprocessing=Preprocessing(input_size=(image_size, image_size)),
        threshold=0.3,
    )
    payload = {"format": "dfseg-checkpoint", "model": model.state_dict(), "epoch": 0}
    payload["manifest"] = manifest.model_dump(mode="json")
    torch.save(payload, path)
    return path


def exported_files(
    checkpoint: Path, attention_sum: AttentionSum = DEFAULT_ATTENTION_SUM
) -> dict[str, Path]:
    """ONNX and OpenVINO FP32 exports of the checkpoint (exported on first use)."""
    options = ExportOptions(
        formats=["onnx", "openvino"], parity_images=2, force=True, attention_sum=attention_sum
    )
    folder = checkpoint.parent / "export"
    trained = (0, 0)  # unused: the export keeps the checkpoint's input size
    files = {
        "onnx": folder / artifact_folder_name("onnx", options, trained) / "model.onnx",
        "openvino": folder / artifact_folder_name("openvino", options, trained) / "model.xml",
    }
    if not all(path.is_file() for path in files.values()):
        report = export_model(ExportSource(checkpoint, None, None), options)
        assert report.passed, report.failures()
    return files


def predictors(
    checkpoint: Path, threads: int, attention_sums: list[AttentionSum]
) -> dict[str, Predictor]:
    common = {"threads": threads, "conf": 0.3}
    runners = {"torch": load_predictor(checkpoint, **common)}  # type: ignore[arg-type]
    for attention_sum in attention_sums:
        files = exported_files(checkpoint, attention_sum)
        tag = "" if attention_sum == DEFAULT_ATTENTION_SUM else f" {attention_sum}"
        found = {
            f"onnxruntime{tag}": (files["onnx"], None),
            f"openvino fp32{tag}": (files["openvino"], "fp32"),
            f"openvino default{tag}": (files["openvino"], "default"),
        }
        for name, (path, precision) in found.items():
            extra = {} if precision is None else {"precision": precision}
            runners[name] = load_predictor(path, **common, **extra)  # type: ignore[arg-type]
    return runners


def frames(count: int) -> list[np.ndarray]:
    params = SyntheticParams(count, (720, 1280), ("circle", "square", "triangle"), 7, 8, 40, 0.0)
    return [render_image(index, params)[0] for index in range(count)]


def time_blocks(
    runners: dict[str, Predictor],
    image: np.ndarray,
    runs: int,
    warmup: int,
    block: int = 5,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, dict[str, list[float]]]:
    """Per backend, the milliseconds of every timed run: "total" by `clock`, stages by wall
    time (the predictor's own timers)."""
    samples: dict[str, dict[str, list[float]]] = {
        name: {stage: [] for stage in (*STAGES, "total")} for name in runners
    }
    for predictor in runners.values():
        for _ in range(warmup):
            predictor.predict_arrays([image])
    for _ in range(max(1, runs // block)):
        for name, predictor in runners.items():
            for _ in range(block):
                before = [getattr(predictor.times, stage) for stage in STAGES]
                start = clock()
                predictor.predict_arrays([image])
                samples[name]["total"].append((clock() - start) * 1e3)
                for stage, seconds in zip(STAGES, before, strict=True):
                    spent = getattr(predictor.times, stage) - seconds
                    samples[name][stage].append(spent * 1e3)
    return samples


def agreement(predictor: Predictor, reference: Predictor, images: list[np.ndarray]) -> str:
    """torch's detections matched in the backend's, with the export parity check's rules
    (FP32: the 10 best per image and any above 0.3; bf16/fp16: those above 0.3, which random
    weights rarely have): "matched/compared, max box diff px"."""
    manifest = predictor.manifest
    batch, _ = preprocess_batch(images, manifest.preprocessing)
    expected = reference.run_batch(batch)
    tolerance = tolerance_for(predictor.backend.info.get("precision", "fp32"), 0.3)
    if tolerance.compared:
        tolerance = dataclasses.replace(tolerance, compared=10)
    parity = compare_outputs(
        expected, predictor.run_batch(batch), tolerance, manifest.preprocessing.input_size,
        "bench", "",
    )  # fmt: skip
    verdict = "ok" if parity.passed else "DIFFERS"
    return f"{parity.matched}/{parity.compared} {parity.max_box_diff_px:.2f}px {verdict}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["n", "s"])
    parser.add_argument("--task", choices=["detect", "segment"], default="detect")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=640)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dfseg-bench-e2e"))
    parser.add_argument("--queries", type=int, default=100, help="trained decoder queries")
    parser.add_argument(
        "--attention-sum", nargs="+", choices=["concat", "levels"], default=[DEFAULT_ATTENTION_SUM]
    )
    parser.add_argument(
        "--skip", nargs="*", default=[], help="backends not timed (torch stays the reference)"
    )
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="total = process CPU time (with --threads 1 on a busy shared machine: close to the "
        "idle single-core latency; stages stay wall time)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images = frames(4)
    print(f"batch 1, {args.image_size}x{args.image_size} input from a 1280x720 frame, "
          f"{args.threads} threads, {args.runs} runs, task {args.task}, "
          f"{args.queries} queries")  # fmt: skip
    header = f"{'size':<5}{'backend':<18}{'median':>8}{'p90':>8}{'pre':>7}{'infer':>8}{'post':>7}"
    print(header + "  compute  vs torch (matched, max box diff)")
    for size in args.sizes:
        folder = args.workdir / f"{size}-{args.task}-{args.image_size}-q{args.queries}"
        checkpoint = make_checkpoint(size, args.task, args.image_size, folder, args.queries)
        runners = predictors(checkpoint, args.threads, args.attention_sum)
        timed = {name: runner for name, runner in runners.items() if name not in args.skip}
        clock = time.process_time if args.cpu_time else time.perf_counter
        samples = time_blocks(timed, images[0], args.runs, args.warmup, clock=clock)
        for name, stages in samples.items():
            totals = sorted(stages["total"])
            p90 = totals[min(len(totals) - 1, int(0.9 * len(totals)))]
            parts = [statistics.median(stages[stage]) for stage in STAGES]
            runner = runners[name]
            compared = "-" if name == "torch" else agreement(runner, runners["torch"], images)
            print(
                f"{size:<5}{name:<18}{statistics.median(totals):>8.1f}{p90:>8.1f}"
                f"{parts[0]:>7.1f}{parts[1]:>8.1f}{parts[2]:>7.1f}  "
                f"{runner.backend.info.get('precision', '?'):<8} {compared}"
            )


if __name__ == "__main__":
    main()
