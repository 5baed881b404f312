"""OpenVINO INT8 (NNCF) of a trained run: accuracy drop against FP32, and end-to-end latency at 640.

Target: D-FINE-N INT8 at 640x640 end to end (pre-processing + inference + post-processing, batch
1, 2 threads) <= 10 ms on the 2-core CPU machine, with an F1 drop <= 0.01 against FP32 on a real
dataset (D-FINE-seg 0.6.2's INT8 N measures 15 ms end to end there; see
`../shared/docs/performance-notes.md`).

    python benchmarks/bench_int8.py runs/kangaroo/exp --mode accuracy --max-drop 0.01

1. Accuracy, at the run's training size: `dfseg quantize` (the library call) on the run, F1 at the
   run's tuned threshold on its val split, FP32 vs INT8 (both with an f32 precision hint), once
   per `--scopes` entry (`export.quantize.scope`: what may become INT8).
2. Latency at `--size`: the run's checkpoint exported at that size (in a scratch copy of the run
   when it was trained at another size) and quantized (basic mode, train images); then each
   artifact x precision hint is timed in `--passes` fresh processes of `--runs` calls on real
   images after warm-up, and the median of the per-process medians is reported (per-process
   medians vary by up to ~1.9x on these shared machines, so compare within one run).

Writes a JSON summary next to the run (`<run>/bench_int8.json`) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import get_args

import numpy as np

from dfseg.config.choices import QuantizeScope

HINTS = ("f32", "default")


def measure(xml: Path, hint: str, images: list[Path], threads: int, runs: int, warmup: int) -> dict:
    """One process's timings: median ms per stage over `runs` single-image calls."""
    from dfseg.runtime.images import read_image_bgr
    from dfseg.runtime.predictor import load_predictor

    predictor = load_predictor(xml, "openvino", threads=threads, precision=hint)
    arrays = [read_image_bgr(p) for p in images]
    for index in range(warmup):
        predictor.predict_arrays([arrays[index % len(arrays)]])
    samples = []
    for index in range(runs):
        times = predictor.times
        before = (times.preprocess, times.inference, times.postprocess)
        predictor.predict_arrays([arrays[index % len(arrays)]])
        after = (times.preprocess, times.inference, times.postprocess)
        samples.append([1000 * (a - b) for a, b in zip(after, before, strict=True)])
    stages = np.array(samples)  # [runs, 3]
    medians = np.median(stages, axis=0)
    return {
        "preprocess_ms": float(medians[0]),
        "inference_ms": float(medians[1]),
        "postprocess_ms": float(medians[2]),
        "total_ms": float(np.median(stages.sum(1))),
        "resolved_precision": predictor.backend.info.get("precision", hint),
    }


def timed_in_fresh_processes(
    xml: Path, hint: str, images: list[Path], args: argparse.Namespace
) -> dict:
    """Median over `args.passes` fresh processes of `measure`."""
    passes = []
    for _ in range(args.passes):
        command = [
            sys.executable, __file__, "--measure", str(xml), "--hint", hint,
            "--threads", str(args.threads), "--runs", str(args.runs), "--warmup", str(args.warmup),
            "--images", *map(str, images),
        ]  # fmt: skip
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        passes.append(json.loads(output.strip().splitlines()[-1]))
    summary = {
        key: statistics.median(p[key] for p in passes) for key in passes[0] if key.endswith("_ms")
    }
    summary["pass_totals_ms"] = [round(p["total_ms"], 2) for p in passes]
    summary["resolved_precision"] = passes[0]["resolved_precision"]
    return summary


def quantize_run(
    run: Path, args: argparse.Namespace, mode: str, scope: str = "all"
) -> tuple[Path, dict]:
    """Quantize `run` (exporting FP32 OpenVINO first if needed); (int8 xml, report dict)."""
    from dfseg.analysis import quantize
    from dfseg.structures.run_layout import resolve_target

    folder, project = resolve_target(run).require_run()
    options = quantize.quantize_options(
        project.export.quantize, mode=mode, max_drop=args.max_drop, metric="f1",
        preset=args.preset, calibration_images=args.calibration_images, threads=args.threads,
        force=True, transformer=not args.no_transformer, scope=scope,
    )  # fmt: skip
    report = quantize.quantize_run(folder, project, options)
    return Path(report.folder) / "model.xml", report.model_dump(mode="json")


def latency_artifacts(run: Path, size: int, args: argparse.Namespace, scratch: Path) -> dict:
    """{"fp32": xml, "int8-<scope>": xml, ...} at `size`x`size` (in a scratch copy of the run)."""
    from dfseg.config import load_project
    from dfseg.export.api import export_model
    from dfseg.export.options import ExportOptions
    from dfseg.export.quantize import find_openvino_fp32
    from dfseg.export.source import find_export_source
    from dfseg.structures.run_layout import RunFolder

    config = load_project(run / "project.yaml")
    copy = scratch / "runs" / config.project.name / run.name
    copy.mkdir(parents=True)
    for name in ("best.pt", "project.yaml"):
        shutil.copyfile(run / name, copy / name)
    (copy.parent / "split").symlink_to(config.split_dir)
    options = ExportOptions(formats=["openvino"], image_size=(size, size), threads=args.threads)
    export_model(find_export_source(copy), options)
    fp32 = find_openvino_fp32(RunFolder(copy))
    assert fp32 is not None
    artifacts = {"fp32": fp32}
    for scope in args.scopes:
        int8, _ = quantize_run(copy, args, "basic", scope)
        kept = int8.parent.with_name(f"openvino-int8-{scope}")
        int8.parent.rename(kept)
        artifacts[f"int8-{scope}"] = kept / int8.name
    return artifacts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, nargs="?", help="A trained run folder (best.pt).")
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--mode", default="accuracy", choices=["basic", "accuracy"])
    parser.add_argument("--max-drop", type=float, default=0.01)
    parser.add_argument("--preset", default="mixed", choices=["mixed", "performance"])
    parser.add_argument("--calibration-images", type=int, default=300)
    parser.add_argument("--no-transformer", action="store_true")
    parser.add_argument(
        "--scopes", nargs="+", default=["all"], choices=list(get_args(QuantizeScope))
    )
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--hint", default="f32", help=argparse.SUPPRESS)
    parser.add_argument("--images", type=Path, nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:  # a timing pass in its own process
        print(
            json.dumps(
                measure(args.measure, args.hint, args.images, args.threads, args.runs, args.warmup)
            )
        )
        return
    if args.run is None:
        parser.error("give a trained run folder")
    run_benchmark(args)


def run_benchmark(args: argparse.Namespace) -> None:
    from dfseg.config import load_project
    from dfseg.data.reading import read_dataset
    from dfseg.data.split import load_split

    started = time.time()
    result: dict = {"run": str(args.run), "size": args.size, "threads": args.threads}
    if not args.skip_accuracy:
        result["accuracy"] = {}
        for scope in args.scopes:
            _, report = quantize_run(args.run, args, args.mode, scope)
            result["accuracy"][scope] = {
                "mode": report["mode"], "f1_fp32": report["fp32"]["metric"],
                "f1_int8": report["int8"]["metric"], "f1_drop": report["drop"],
                "map50_fp32": report["fp32"]["box"]["map50"],
                "map50_int8": report["int8"]["box"]["map50"],
                "map50_95_fp32": report["fp32"]["box"]["map50_95"],
                "map50_95_int8": report["int8"]["box"]["map50_95"],
                "validation_images": report["validation_images"],
                "calibration_images": report["calibration_images"],
                "threshold": report["threshold"],
            }  # fmt: skip
        print(json.dumps(result["accuracy"], indent=1))
    config = load_project(args.run / "project.yaml")
    dataset = read_dataset(config.data.path, config.data.format, config.class_names or None)
    images = [a.image_path for a in load_split(config.split_dir, dataset)["val"][:8]]
    with tempfile.TemporaryDirectory(prefix="bench-int8-") as scratch:
        artifacts = latency_artifacts(args.run, args.size, args, Path(scratch))
        result["latency"] = {
            f"{name}:{hint}": timed_in_fresh_processes(xml, hint, images, args)
            for name, xml in artifacts.items()
            for hint in HINTS
        }
    result["seconds"] = round(time.time() - started)
    (args.run / "bench_int8.json").write_text(json.dumps(result, indent=2) + "\n")
    header = ("artifact:hint", "compute", "pre", "infer", "post", "total")
    print("{:<24} {:>8} {:>6} {:>7} {:>6} {:>7}  passes".format(*header))
    for name, row in result["latency"].items():
        print(
            f"{name:<24} {row['resolved_precision']:>8} {row['preprocess_ms']:6.2f} "
            f"{row['inference_ms']:7.2f} {row['postprocess_ms']:6.2f} {row['total_ms']:7.2f}  "
            f"{row['pass_totals_ms']}"
        )
    print(f"written {args.run / 'bench_int8.json'}")


if __name__ == "__main__":
    main()
