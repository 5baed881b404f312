"""Files written by dfseg 0.1.0 keep loading: checkpoints, resume and manifests (see
tests/fixtures/legacy-0.1.0/README.md)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
import torch
from training_fixtures import tiny_project

from dfseg.nn.trained import load_trained_model
from dfseg.structures.manifest import ArtifactManifest
from dfseg.training.api import config_for_resume, train_project
from dfseg.training.checkpoint_io import load_payload
from dfseg.training.optim import optimizer_kind

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy-0.1.0"


def unpack(name: str, folder: Path) -> Path:
    target = folder / name
    with gzip.open(LEGACY / f"{name}.gz", "rb") as src, target.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return target


def test_old_best_checkpoint_loads_with_its_manifest(tmp_path: Path) -> None:
    model, manifest = load_trained_model(unpack("best.pt", tmp_path))
    assert manifest.model.size == "n" and manifest.model.task == "segment"
    assert manifest.class_names == ["circle", "square"]
    assert tuple(manifest.preprocessing.input_size) == (256, 256)
    assert model.has_mask_head and not model.training
    assert all(torch.count_nonzero(p) == 0 for p in model.parameters())  # the zeroed weights


def test_old_export_manifest_reads() -> None:
    manifest = ArtifactManifest.read(LEGACY / "onnx_manifest.json")
    assert manifest.format == "onnx" and manifest.outputs[-1] == "mask_logits"
    assert manifest.model.num_classes == len(manifest.class_names) == 2


def test_old_last_checkpoint_resumes(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project", task="segment", images=8)
    run = tmp_path / "runs" / "tiny" / "exp"
    run.mkdir(parents=True)
    last = unpack("last.pt", run)
    config = config_for_resume(
        last,
        [
            f"data.path={project.parent / 'data'}",
            f"project.output={tmp_path / 'runs'}",
            "train.epochs=2",
        ],
    )
    report = train_project(config, resume_from=last)
    assert report is not None and report.resumed_from_epoch == 1
    assert report.epochs_completed == 2 and report.run_dir == str(run)
    payload = load_payload(run / "last.pt")
    assert payload["epoch"] == 2 and payload["config"]["train"]["epochs"] == 2
    # 0.1.0 trained with AdamW; from scratch the default is now Muon, yet the run goes on
    # with the optimizer whose state it saved
    assert optimizer_kind(payload["optimizer"]) == "adamw"
    # the zeroed weights give non-finite losses (batches skipped); the point is that it resumed
    rows = (run / "results.csv").read_text().splitlines()
    assert rows[-1].startswith("2,")


@pytest.mark.parametrize("name", ["best.pt", "last.pt"])
def test_fixture_is_what_0_1_0_wrote(tmp_path: Path, name: str) -> None:
    payload = load_payload(unpack(name, tmp_path))
    assert payload["format"] == "dfseg-checkpoint"
    assert payload["manifest"]["model"] == {
        "size": "n", "num_classes": 2, "task": "segment", "image_size": [256, 256],
    }  # fmt: skip
    if name == "last.pt":
        assert "model_spec" in payload  # 0.1.0 stored a second copy of the model description
