"""`train.batch_size: auto`: the probe's memory line, the arithmetic of the choice, a model left
as it was found, and a run that records the batch it chose."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from training_fixtures import tiny_config, tiny_project

from dfseg.nn import build_model
from dfseg.training import auto_batch
from dfseg.training.api import train_project
from dfseg.training.auto_batch import MEMORY_SHARE, choose_batch_size

CPU = torch.device("cpu")
HW = (256, 256)


def test_the_probe_is_linear_in_the_batch_and_leaves_the_model_untouched() -> None:
    model = build_model("n", 3, "segment", HW)
    sizes = [auto_batch._cpu_peak(model.train(), batch, HW, CPU) for batch in (1, 2, 4)]
    per_image = sizes[1] - sizes[0]
    assert per_image > 0 and abs((sizes[2] - sizes[1]) / 2 - per_image) < 0.1 * per_image
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    choice = choose_batch_size(model, HW, CPU, train_images=1000)
    assert choice.batch_size >= 1 and "MiB per image at 256x256" in choice.reason
    assert not model.training and all(p.grad is None for p in model.parameters())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics included


def test_the_choice_fits_the_measured_line_into_the_free_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = build_model("n", 3, "detect", HW)
    mib = 2**20
    monkeypatch.setattr(auto_batch, "_cpu_peak", lambda m, batch, hw, d: (100 + 200 * batch) * mib)
    monkeypatch.setattr(auto_batch, "_cpu_available", lambda: 4096 * mib)
    moments = 2 * sum(p.numel() * p.element_size() for p in model.parameters())
    expected = int((MEMORY_SHARE * 4096 * mib - moments - 100 * mib) // (200 * mib))
    assert choose_batch_size(model, HW, CPU, train_images=1000).batch_size == expected
    assert choose_batch_size(model, HW, CPU, train_images=5).batch_size == min(5, expected)
    monkeypatch.setattr(auto_batch, "_cpu_available", lambda: None)
    fallback = choose_batch_size(model, HW, CPU, train_images=1000)
    assert fallback.batch_size == 8 and "cannot be measured" in fallback.reason


def test_a_run_records_the_batch_it_chose(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auto_batch, "MAX_BATCH", 3)  # keep the run small
    project = tiny_project(tmp_path, task="detect", images=8)
    events = []
    report = train_project(
        tiny_config(project, **{"train.epochs": 1, "train.batch_size": "auto"}),
        progress=events.append,
    )
    assert report is not None
    saved = yaml.safe_load((Path(report.run_dir) / "project.yaml").read_text())
    assert saved["train"]["batch_size"] == 3
    assert any("batch 3: auto:" in (e.message or "") for e in events)
