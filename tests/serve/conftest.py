"""Real `dfseg serve` processes on free loopback ports, shared by the serving tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
from run_builder import write_run

pytest.importorskip("fastapi", reason="the serve extra is not installed")
httpx = pytest.importorskip("httpx", reason="httpx (dev extra) is not installed")

STARTUP_SECONDS = 180  # model load + warm-up on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(target: Path, *args: str, log: Path) -> Iterator[str]:
    """`dfseg serve TARGET ARGS` in its own process; yields its base URL once /health answers,
    and stops it afterwards."""
    port = free_port()
    command = [sys.executable, "-m", "dfseg", "serve", str(target), "--port", str(port), *args]
    env = {**os.environ, "DFSEG_THREADS": "1"}
    with log.open("w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                raise AssertionError(f"dfseg serve exited: {log.read_text()}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"dfseg serve did not start: {log.read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def serve_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake segmentation run (random N model, 256 px, stretch resize)."""
    return write_run(tmp_path_factory.mktemp("serve-run"), task="segment")[1]


@pytest.fixture(scope="session")
def serve_images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three PNG images of different sizes with bright shapes on noise."""
    folder = tmp_path_factory.mktemp("serve-images")
    rng = np.random.default_rng(5)
    paths = []
    for index, (height, width) in enumerate([(200, 300), (256, 256), (300, 180)]):
        image = rng.integers(0, 90, (height, width, 3), dtype=np.uint8)
        cv2.circle(image, (width // 3, height // 2), min(height, width) // 5, (40, 200, 250), -1)
        cv2.rectangle(
            image, (width // 2, height // 4), (width - 20, height // 2), (250, 60, 30), -1
        )
        path = folder / f"image{index}.png"
        cv2.imwrite(str(path), image)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def server_url(serve_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for most tests: small body and pixel limits so refusals are cheap to test,
    a long batching window so concurrent requests reliably share model calls."""
    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    limits = ["--max-body-mb", "1", "--max-pixels", "1000000", "--max-wait-ms", "100"]
    with running_server(serve_run, *limits, "--max-batch", "4", log=log) as url:
        yield url


def plant_run_files(run: Path) -> None:
    """results.csv, a plot, a bench.csv and an error gallery, as the commands write them."""
    rows = ["epoch,train_loss,map50,map50_95", "1,40.5,0.1,0.05", "2,30.1,0.3,0.12"]
    (run / "results.csv").write_text("\n".join(rows) + "\n")
    cv2.imwrite(str(run / "PR_curve.png"), np.full((60, 80, 3), 200, np.uint8))
    (run / "bench").mkdir()
    header = "name,backend,inference_precision,status,metric,drop,artifact"
    row = f"torch fp32,torch,fp32,passed,f1,0.0,{run / 'best.pt'}"
    (run / "bench" / "bench.csv").write_text(f"{header}\n{row}\n")
    gallery = run / "errors" / "gallery" / "background"
    gallery.mkdir(parents=True)
    cv2.imwrite(str(gallery / "00000_a.jpg"), np.full((50, 50, 3), 90, np.uint8))
