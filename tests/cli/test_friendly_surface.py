"""The surface a new user meets: a fast --help, errors that say where they come from, JSON errors
for scripts, `init` that reads the dataset, decoder warnings kept off the console, thread
choice, file permissions."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from dfseg.cli.app import app
from dfseg.config import load_project
from dfseg.runtime.threads import choose_threads, collapse_hint

runner = CliRunner()
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))


def _project(tmp_path: Path) -> Path:
    path = tmp_path / "project.yaml"
    path.write_text("data:\n  path: data\ntrain:\n  epocs: 3\n")
    return path


def test_help_imports_neither_torch_nor_cv2_nor_polars() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['dfseg', '--help']\n"
        "from dfseg.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'cv2', 'polars', 'pydantic') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "HEAVY []" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Train, export and deploy" in result.stdout


def test_config_errors_say_which_come_from_the_command_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(_project(tmp_path)), "train.epochs=0"])
    assert result.exit_code == 2
    assert "command line: train.epochs: must be > 0" in result.output
    assert "project.yaml:4: train.epocs: unknown key; did you mean 'train.epochs'?" in result.output


def test_json_errors_are_a_json_object_on_stdout(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(_project(tmp_path)), "--json"])
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "ConfigError" and error["exit_code"] == 2
    assert "train.epocs" in error["message"]


def test_init_reads_class_names_and_splits_from_the_dataset(tmp_path: Path) -> None:
    from test_predefined_splits import roboflow_coco

    roboflow_coco(tmp_path / "data")
    result = runner.invoke(app, ["init", str(tmp_path), "--format", "coco", "--task", "detect"])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "project.yaml").read_text()
    assert "classes: []" in text and "read from the dataset" in result.output
    assert "split: {train: train, val: valid, test: test}" in text
    config = load_project(tmp_path / "project.yaml")
    assert config.data.split.sources == {"train": "train", "val": "valid", "test": "test"}
    split = runner.invoke(app, ["split", str(tmp_path / "project.yaml")])
    assert split.exit_code == 0, split.output
    assert "used as found: train = train/, val = valid/, test = test/" in split.output


def test_split_refuses_to_mix_a_shipped_test_split_into_training(tmp_path: Path) -> None:
    from test_predefined_splits import roboflow_coco

    roboflow_coco(tmp_path / "data")
    project = tmp_path / "project.yaml"
    project.write_text(
        "data:\n  path: data\n  format: coco\n  split: {train: 0.8, val: 0.2, test: 0.0}\n"
    )
    refused = runner.invoke(app, ["split", str(project)])
    assert refused.exit_code == 2 and "comes split already" in refused.output
    assert not (tmp_path / "runs").exists()
    check = runner.invoke(app, ["check", str(project)])
    assert "comes split already" in check.output  # check says it too, before any training
    mixed = runner.invoke(app, ["split", str(project), "data.split.merge_predefined=true"])
    assert mixed.exit_code == 0, mixed.output


@pytest.mark.export
def test_decoder_warnings_go_to_the_log_not_the_console(tmp_path: Path) -> None:
    from run_builder import write_run

    _, run = write_run(tmp_path / "p", task="detect")
    image = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "full.jpg"), image)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) - 300])
    env = {**os.environ, "DFSEG_THREADS": "1", "DFSEG_COLOR": "never"}
    result = subprocess.run(
        [sys.executable, "-m", "dfseg", "infer", str(run), str(tmp_path / "truncated.jpg"),
         "--no-save-images"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Premature end of JPEG file" not in result.stderr
    assert "image decoders reported 1 warning(s)" in result.stderr
    assert "1 images:" in result.stdout  # the image itself was predicted


def test_thread_choice_follows_the_request_and_the_other_processes() -> None:
    assert choose_threads(3).threads == 3 and "DFSEG_THREADS" in choose_threads(3).reason
    cores = len(os.sched_getaffinity(0))
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)  # let it take its core
        choice = choose_threads(None)
    finally:
        busy.kill()
        busy.wait()
    assert choice.threads < cores or cores == 1
    assert "busy" in choice.reason or cores == 1
    assert collapse_hint(0.2, 2.1) is not None and "DFSEG_THREADS" in str(collapse_hint(0.2, 2.1))
    assert collapse_hint(1.5, 2.1) is None


def test_a_collapsed_epoch_drops_threads_only_when_they_were_chosen() -> None:
    import types

    import torch

    from dfseg.training.hooks import ThroughputWatch

    cores = len(os.sched_getaffinity(0))
    if cores < 2:
        pytest.skip("needs two cores to have one taken")
    trainer = types.SimpleNamespace(progress=None)
    epoch = types.SimpleNamespace
    previous = torch.get_num_threads()
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        for adapt, expected in ((False, cores), (True, cores - 1)):
            torch.set_num_threads(cores)
            watch = ThroughputWatch(adapt=adapt)
            watch.on_epoch_end(trainer, epoch(images_per_second=6.0))  # type: ignore[arg-type]
            assert torch.get_num_threads() == cores  # a fast epoch changes nothing
            watch.on_epoch_end(trainer, epoch(images_per_second=1.0))  # type: ignore[arg-type]
            assert torch.get_num_threads() == expected
    finally:
        busy.kill()
        busy.wait()
        torch.set_num_threads(previous)


def test_checkpoints_are_readable_like_the_other_run_files(tmp_path: Path) -> None:
    import torch

    from dfseg.training.checkpoint_io import save_atomic

    previous = os.umask(0o022)
    try:
        save_atomic({"x": torch.zeros(1)}, tmp_path / "best.pt")
        (tmp_path / "other.txt").write_text("x")
    finally:
        os.umask(previous)
    mode = stat.S_IMODE((tmp_path / "best.pt").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "other.txt").stat().st_mode) == 0o644
