"""Real multi-process training (torch.distributed, gloo on CPU) and a real SIGKILL mid-epoch."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from training_fixtures import tiny_project

from dfseg.training.checkpoint_io import load_payload

FAST = [
    "train.batch_size=2", "train.workers=0", "train.ema_warmup=10",
    "augment.debug_images=0", "data.split.train=0.66", "data.split.val=0.34",
]  # fmt: skip


def dfseg(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DFSEG_THREADS": "1", "DFSEG_COLOR": "never"}
    return subprocess.Popen(
        [sys.executable, "-m", "dfseg", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kwargs,  # type: ignore[call-overload]
    )


def epochs_in(results: Path) -> list[str]:
    with results.open() as handle:
        return [row["epoch"] for row in csv.DictReader(handle)]


@pytest.mark.slow
def test_two_process_ddp_on_cpu_writes_once_and_gathers_all_images(tmp_path: Path) -> None:
    project = tiny_project(tmp_path, images=12)
    process = dfseg("train", str(project), "--devices", "2", "--json", "train.epochs=1", *FAST)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    report = json.loads(stdout[stdout.index("{") :])
    runs = sorted(p.name for p in (tmp_path / "runs" / "tiny").iterdir() if p.name != "split")
    assert runs == ["exp"], "only rank 0 creates the run folder"
    val_images = (
        len((tmp_path / "runs" / "tiny" / "split" / "val.csv").read_text().splitlines()) - 1
    )
    assert report["final"]["overall"]["images"] == val_images  # both ranks' shares gathered
    assert epochs_in(tmp_path / "runs" / "tiny" / "exp" / "results.csv") == ["1"]
    log = (tmp_path / "runs" / "tiny" / "exp" / "train.log").read_text()
    assert log.count("epoch 1/1") == 1
    assert load_payload(tmp_path / "runs" / "tiny" / "exp" / "last.pt")["epoch"] == 1


@pytest.mark.slow
def test_sigkill_mid_epoch_resumes_from_the_last_completed_epoch(tmp_path: Path) -> None:
    project = tiny_project(tmp_path, images=24)
    run = tmp_path / "runs" / "tiny" / "exp"
    process = dfseg("train", str(project), "train.epochs=3", *FAST)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if (run / "last.pt").exists() and load_payload(run / "last.pt")["epoch"] == 1:
            break
        if process.poll() is not None:
            pytest.fail(f"training ended early: {process.stderr.read()[-2000:]}")  # type: ignore[union-attr]
        time.sleep(0.2)
    time.sleep(1.0)  # well inside epoch 2
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert load_payload(run / "last.pt")["epoch"] == 1
    resumed = dfseg("train", str(project), "--resume")
    _, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr[-3000:]
    assert load_payload(run / "last.pt")["epoch"] == 3
    assert epochs_in(run / "results.csv") == ["1", "2", "3"]
    assert not (run.parent / "exp-2").exists()
