"""End-to-end CPU latency of dfseg beside its peers (dfine-seg, Ultralytics YOLO26 / YOLO11), one
table from one run: the same 1280x720 frame, the same threads, fresh processes, interleaved.

Each tool runs in its own Python environment (`--peer NAME=PYTHON`; the peers need torchvision
and their own torch, which dfseg's environment does not have). Per tool and size,
`peer_worker.py prepare` builds a randomly initialised model (80 classes, batch norm set on random
images) and exports it with the tool's own exporters: torch, ONNX, OpenVINO FP32 and OpenVINO
INT8 (NNCF, calibrated on 16 generated frames). Then every (tool, size, format) is timed in
`--passes` rounds; in each round each one runs in a fresh process (`peer_worker.py time`:
`--warmup` calls, then `--runs` timed calls of the tool's own inference call on the frame,
pre- and post-processing included) and the rows take turns in an order that rotates from round to
round, so that background load affects them alike. A cell is the median of the rounds' medians,
with the rounds' range. Without `--peer`, only dfseg's rows are timed. `--dfseg-variant q100-l2`
adds dfseg exported with a limited decoder (`dfseg export --num-queries 100 --decoder-layers 2`;
no torch row: the checkpoint runs the full decoder).

Formats: torch; onnx (ONNX Runtime, FP32); ov-f32 / ov-bf16 (the FP32 OpenVINO IR compiled with
that INFERENCE_PRECISION_HINT); ov-int8 / ov-int8-bf16 (the INT8 IR, its float layers in f32 or
bf16). The hint and the thread count are set the same way for every tool (peer_worker.py wraps
openvino.Core.compile_model). Latency only: random weights say nothing about accuracy; the
detections column shows that no tool decodes hundreds of boxes (see peer_worker.background_prior).

    python benchmarks/bench_peers.py --peer dfine-seg=/opt/peers/bin/python \\
        --peer yolo26=/opt/peers/bin/python --sizes n s --passes 3 --runs 100
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WORKER = HERE / "peer_worker.py"
sys.path.insert(0, str(HERE))
from peer_worker import FORMATS, TOOLS, artifact_key, check_tool  # noqa: E402

PEERS = tuple(tool for tool in TOOLS if tool != "dfseg")
CALIBRATION_FRAMES = 16
OPENVINO = tuple(fmt for fmt in FORMATS if fmt.startswith("ov-"))


class BenchError(Exception):
    """A step of the benchmark failed (the message says which and why)."""


@dataclasses.dataclass(frozen=True)
class Row:
    tool: str
    size: str
    fmt: str


@dataclasses.dataclass
class Cell:
    """The per-round medians (ms) of one row, and the detections of its last call."""

    rounds: list[float] = dataclasses.field(default_factory=list)
    detections: int | None = None
    error: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.rounds)

    def text(self) -> str:
        if self.error is not None:
            return "failed"
        if not self.rounds:
            return "-"
        low, high = min(self.rounds), max(self.rounds)
        return f"{self.median:.1f} ({low:.0f}-{high:.0f})"


def parse_peer(text: str) -> tuple[str, Path]:
    """`dfine-seg=/opt/peers/bin/python` -> ("dfine-seg", Path(...)), checked."""
    name, sep, python = text.partition("=")
    if not sep or name not in PEERS:
        raise BenchError(f"--peer {text!r}: expected NAME=PYTHON with NAME one of {list(PEERS)}")
    path = Path(python).expanduser()
    if not path.is_file():
        raise BenchError(f"--peer {text!r}: no Python interpreter at {path}")
    return name, path


def rounds_order(rows: list[Row], passes: int) -> list[list[Row]]:
    """The rows of each round, the order rotated by one row from round to round."""
    if not rows:
        return []
    return [rows[i % len(rows) :] + rows[: i % len(rows)] for i in range(passes)]


def last_json(stdout: str) -> dict:
    """The JSON object a worker printed last (tools print their own lines before it)."""
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise BenchError("the worker printed no result")


def run_worker(python: Path, arguments: list[str], threads: int, timeout: float) -> dict:
    command = [str(python), str(WORKER), *arguments, "--threads", str(threads)]
    env = {"YOLO_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)}
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env={**os.environ, **env}
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"{' '.join(arguments[:4])}: no result within {timeout:.0f} s") from None
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise BenchError(f"{' '.join(arguments[:4])} failed (exit {done.returncode}): {tail}")
    return last_json(done.stdout)


def cpu_description() -> str:
    """The CPU model and the instruction sets that decide OpenVINO's kernels."""
    model, flags = platform.processor() or "?", set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    present = [flag for flag in wanted if flag in flags]
    return f"{model} [{' '.join(present) or 'no AVX-512 / AMX flags read'}]"


def write_frames(folder: Path) -> Path:
    """16 calibration frames and the timed frame (1280x720 BGR generated shapes) as .npy."""
    from dfseg.data.synthetic import SyntheticParams, render_image

    calibration = folder / "calibration"
    calibration.mkdir(parents=True, exist_ok=True)
    params = SyntheticParams(
        CALIBRATION_FRAMES + 1, (720, 1280), ("circle", "square", "triangle"), 7, 8, 40, 0.0
    )
    for index in range(CALIBRATION_FRAMES):
        np.save(calibration / f"{index:03d}.npy", render_image(index, params)[0])
    frame = folder / "frame.npy"
    np.save(frame, render_image(CALIBRATION_FRAMES, params)[0])
    return frame


def goal_lines(cells: dict[Row, Cell], sizes: list[str]) -> list[str]:
    """The ratios the CPU-speed goals are stated in, where both sides were measured, for dfseg
    and each dfseg decoder variant."""

    def best(tool: str, size: str, formats: tuple[str, ...]) -> tuple[float, str] | None:
        found = [
            (cells[row].median, row.fmt)
            for row in cells
            if row.tool == tool and row.size == size and row.fmt in formats and cells[row].rounds
        ]
        return min(found) if found else None

    int8 = ("ov-int8", "ov-int8-bf16")
    lines = []
    ours_tools = sorted({row.tool for row in cells if row.tool.startswith("dfseg")}, key=len)
    for size, ours_tool in ((size, tool) for size in sizes for tool in ours_tools):
        ours_int8 = best(ours_tool, size, int8)
        ours_bf16 = best(ours_tool, size, ("ov-bf16",))
        comparisons = [
            ("INT8", ours_int8, "dfine-seg", best("dfine-seg", size, int8), 0.5),
            ("INT8", ours_int8, "yolo26", best("yolo26", size, OPENVINO), 0.6),
            ("bf16", ours_bf16, "yolo26", best("yolo26", size, ("ov-bf16",)), 0.7),
        ]
        for label, ours, peer, theirs, goal in comparisons:
            if ours is None or theirs is None:
                continue
            ratio = ours[0] / theirs[0]
            verdict = "met" if ratio <= goal else "not met"
            lines.append(
                f"{size}: {ours_tool} {label} ({ours[1]}) {ours[0]:.1f} ms / {peer} {theirs[1]} "
                f"{theirs[0]:.1f} ms = {ratio:.2f}x (goal <= {goal}x: {verdict})"
            )
    return lines


def table(cells: dict[Row, Cell], formats: list[str]) -> list[str]:
    width = 18
    lines = [f"{'tool':<15}{'size':<5}" + "".join(f"{fmt:>{width}}" for fmt in formats)]
    lines[0] += "  detections"

    def order(key: tuple[str, str]) -> tuple[str, int, str]:
        tool, size = key
        return (size, TOOLS.index(tool) if tool in TOOLS else 0, tool)

    keys = sorted({(row.tool, row.size) for row in cells}, key=order)
    for tool, size in keys:
        row_cells = [cells.get(Row(tool, size, fmt), Cell()) for fmt in formats]
        found = sorted({c.detections for c in row_cells if c.detections is not None})
        lines.append(
            f"{tool:<15}{size:<5}"
            + "".join(f"{cell.text():>{width}}" for cell in row_cells)
            + f"  {','.join(map(str, found)) or '-'}"
        )
    return lines


def run(args: argparse.Namespace) -> dict:
    peers = dict(parse_peer(text) for text in args.peer)
    variants = {check_tool(f"dfseg-{name}"): Path(sys.executable) for name in args.dfseg_variant}
    pythons = {"dfseg": Path(sys.executable), **variants, **peers}
    args.workdir.mkdir(parents=True, exist_ok=True)
    frame = write_frames(args.workdir)
    started = time.time()
    artifacts: dict[tuple[str, str], Path] = {}  # (tool, size) -> the JSON `prepare` printed
    available: dict[tuple[str, str], set[str]] = {}  # (tool, size) -> its artifact keys
    versions, failures = {}, []
    for tool, python in pythons.items():
        for size in args.sizes:
            prepare = [
                "prepare", tool, size, "--workdir", str(args.workdir),
                "--image-size", str(args.image_size),
                "--calibration", str(args.workdir / "calibration"), "--formats", *args.formats,
            ]  # fmt: skip
            try:
                result = run_worker(python, prepare, args.threads, args.prepare_timeout)
            except BenchError as exc:
                failures.append(f"prepare {tool} {size}: {exc}")
                continue
            path = args.workdir / f"{tool}-{size}-{args.image_size}.json"
            path.write_text(json.dumps(result) + "\n")
            artifacts[(tool, size)] = path
            available[(tool, size)] = set(result["artifacts"])
            versions[tool] = result["version"]
    rows = [
        Row(tool, size, fmt)
        for (tool, size), keys in available.items()
        for fmt in args.formats
        if artifact_key(fmt) in keys
    ]
    cells = {row: Cell() for row in rows}
    for order in rounds_order(rows, args.passes):
        for row in order:
            cell = cells[row]
            if cell.error is not None:
                continue
            timing = [
                "time", row.tool, row.size, row.fmt, "--workdir", str(args.workdir),
                "--image-size", str(args.image_size), "--frame", str(frame),
                "--artifacts", str(artifacts[(row.tool, row.size)]),
                "--runs", str(args.runs), "--warmup", str(args.warmup),
            ]  # fmt: skip
            try:
                result = run_worker(pythons[row.tool], timing, args.threads, args.time_timeout)
            except BenchError as exc:
                cell.error = str(exc)
                failures.append(f"time {row.tool} {row.size} {row.fmt}: {exc}")
                continue
            cell.rounds.append(statistics.median(result["ms"]))
            cell.detections = result["detections"]
    return {
        "cpu": cpu_description(),
        "threads": args.threads,
        "image_size": args.image_size,
        "passes": args.passes,
        "runs": args.runs,
        "versions": versions,
        "cells": cells,
        "failures": failures,
        "seconds": round(time.time() - started),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--peer", action="append", default=[], metavar="NAME=PYTHON",
        help=f"a peer and the Python of its environment; NAME: {list(PEERS)}",
    )  # fmt: skip
    parser.add_argument(
        "--dfseg-variant", action="append", default=[], metavar="q<Q>-l<L>",
        help="also time dfseg exported with a limited decoder, e.g. q100-l2 (--num-queries 100 "
        "--decoder-layers 2), l3, q150",
    )  # fmt: skip
    parser.add_argument("--sizes", nargs="+", default=["n"], choices=list("nsmlx"))
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=640)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dfseg-bench-peers"))
    parser.add_argument("--fresh", action="store_true", help="rebuild the cached models")
    parser.add_argument("--prepare-timeout", type=float, default=1800)
    parser.add_argument("--time-timeout", type=float, default=900)
    args = parser.parse_args()
    for name in args.dfseg_variant:
        try:
            check_tool(f"dfseg-{name}")
        except argparse.ArgumentTypeError as exc:
            parser.error(f"--dfseg-variant {name}: {exc}")
    if args.fresh and args.workdir.exists():
        shutil.rmtree(args.workdir)
    try:
        result = run(args)
    except BenchError as exc:
        parser.exit(2, f"bench_peers: {exc}\n")
    print(f"CPU: {result['cpu']}")
    print(
        f"batch 1, {args.image_size}x{args.image_size} from a 1280x720 frame, {args.threads} "
        f"threads; ms end to end, median of {args.passes} fresh-process rounds of {args.runs} "
        f"calls (range of the rounds); versions {result['versions']}"
    )
    for line in table(result["cells"], args.formats):
        print(line)
    for line in goal_lines(result["cells"], args.sizes):
        print(line)
    for line in result["failures"]:
        print(f"FAILED {line}")
    summary = {
        **{k: v for k, v in result.items() if k != "cells"},
        "rows": [
            {**dataclasses.asdict(row), **dataclasses.asdict(cell)}
            for row, cell in result["cells"].items()
        ],
    }
    out = args.workdir / "bench_peers.json"
    out.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"written {out} ({result['seconds']} s)")
    if result["failures"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
