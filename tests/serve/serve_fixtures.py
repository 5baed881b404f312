"""Helpers of the serving tests: real `dfseg serve` processes on free loopback ports, and the
files a run folder holds after training, bench and errors. A plain module (not the conftest),
so that test modules import it by a name no other test folder uses."""

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

STARTUP_SECONDS = 180  # model load + warm-up on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(target: Path, *args: str, log: Path) -> Iterator[str]:
    """`dfseg serve TARGET ARGS` in its own process; yields its base URL once /health answers,
    and stops it afterwards."""
    import httpx  # the dev extra: the conftest skips the folder without it
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
