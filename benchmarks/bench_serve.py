"""`dfseg serve` under load: N concurrent clients on loopback for a bounded time, with and
without micro-batching.

Each configuration starts a fresh `dfseg serve` process, sends one warm-up request, then runs
`--clients` threads that each POST the same JPEG back to back for `--seconds`. The table gives
requests/s, p50/p99 latency as the clients saw it, the errors (must be 0) and the mean batch the
server ran (from /health).

    python benchmarks/bench_serve.py                          # a random-weight N model (speed)
    python benchmarks/bench_serve.py --artifact runs/x/exp/export/onnx-fp32-dyn/model.onnx
    python benchmarks/bench_serve.py --clients 1 4 8 --batches 1 8 --seconds 30

Without `--artifact` a random-weight N segmentation model (256 px) is made and exported to a
dynamic-batch ONNX file: the speed is a real model's, its detections are not.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def random_weight_artifact(folder: Path) -> Path:
    """A dynamic-batch ONNX export of a random N segmentation run (the tests' fake run)."""
    sys.path.insert(0, str(ROOT / "tests" / "runtime"))
    from run_builder import write_run

    from dfseg.export.api import export_model
    from dfseg.export.options import ExportOptions
    from dfseg.export.source import find_export_source

    _, run = write_run(folder / "run", task="segment")
    options = ExportOptions(formats=["onnx"], batch=8, dynamic_batch=True, parity_images=1)
    report = export_model(find_export_source(run / "best.pt"), options)
    return Path(report.artifacts[0].model_file)


def test_image(size_wh: tuple[int, int]) -> bytes:
    """A 1280x720 (default) JPEG with shapes on noise, as a camera frame would be sent."""
    width, height = size_wh
    rng = np.random.default_rng(0)
    image = rng.integers(0, 120, (height, width, 3), dtype=np.uint8)
    cv2.circle(image, (width // 3, height // 2), height // 5, (40, 200, 250), -1)
    cv2.rectangle(image, (width // 2, height // 4), (width - 60, height // 2), (250, 60, 30), -1)
    return cv2.imencode(".jpg", image)[1].tobytes()


def start_server(artifact: Path, port: int, args: list[str], log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "dfseg", "serve", str(artifact), "--port", str(port), *args]
    with log.open("w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"dfseg serve exited:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"dfseg serve did not start:\n{log.read_text()}")


def load(url: str, body: bytes, clients: int, seconds: float) -> dict[str, float]:
    """`clients` threads POSTing `body` back to back for `seconds`."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client() -> None:
        with httpx.Client(timeout=120) as session:
            while time.perf_counter() < stop:
                started = time.perf_counter()
                try:
                    ok = session.post(url, content=body, headers={"Content-Type": "image/jpeg"})
                    failed = ok.status_code != 200
                except httpx.HTTPError:
                    failed = True
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    errors[0] += failed

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "requests_per_s": len(ordered) / wall,
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "errors": errors[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--artifact", type=Path, help="model to serve (default: random weights)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8], help="--max-batch values")
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=2, help="server CPU threads")
    parser.add_argument("--port", type=int, default=8731)
    parser.add_argument("--out", type=Path, default=Path("bench-serve.jsonl"))
    args = parser.parse_args()

    from dfseg.runtime.threads import cpu_model

    body = test_image((1280, 720))
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        artifact = args.artifact or random_weight_artifact(Path(scratch))
        for max_batch in args.batches:
            server_args = ["--threads", str(args.threads), "--max-batch", str(max_batch),
                           "--max-wait-ms", str(args.max_wait_ms), "--masks", "none"]  # fmt: skip
            log = Path(scratch) / f"serve-{max_batch}.log"
            process = start_server(artifact, args.port, server_args, log)
            url = f"http://127.0.0.1:{args.port}"
            try:
                httpx.post(f"{url}/predict", content=body, timeout=120)  # warm-up
                for clients in args.clients:
                    before = httpx.get(f"{url}/health").json()
                    result = load(f"{url}/predict", body, clients, args.seconds)
                    after = httpx.get(f"{url}/health").json()
                    served = after["requests"] - before["requests"]
                    batches = max(1, after["batches"] - before["batches"])
                    row = {"cpu": cpu_model(), "artifact": str(artifact)}
                    row |= {"max_batch": max_batch, "clients": clients, **result}
                    row["mean_batch"] = served / batches
                    rows.append(row)
                    with args.out.open("a") as handle:
                        handle.write(json.dumps(row) + "\n")
            finally:
                process.terminate()
                process.wait(30)
    print(f"CPU: {rows[0]['cpu']}  server threads: {args.threads}  {args.seconds:g} s per row")
    print("| max batch | clients | req/s | p50 ms | p99 ms | errors | mean batch |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['max_batch']} | {row['clients']} | {row['requests_per_s']:.2f} | "
              f"{row['p50_ms']:.0f} | {row['p99_ms']:.0f} | {row['errors']} | "
              f"{row['mean_batch']:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
