"""Finding the artifact a target means: files, export folders, run folders, runs roots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dfseg.runtime.artifacts import resolve_artifact
from dfseg.runtime.errors import ArtifactError
from dfseg.structures.manifest import ArtifactManifest, ModelDescription, Preprocessing
from dfseg.structures.run_layout import RunFolder, RunNotFoundError


def _manifest(fmt: str) -> ArtifactManifest:
    return ArtifactManifest(
        format=fmt,  # type: ignore[arg-type]
        model=ModelDescription(size="n", num_classes=1, task="detect", image_size=(256, 256)),
        class_names=["a"],
        preprocessing=Preprocessing(input_size=(256, 256)),
    )


def _export(run: Path, name: str, fmt: str, file: str, age: int) -> Path:
    folder = run / "export" / name
    folder.mkdir(parents=True)
    (folder / file).write_bytes(b"x")
    manifest = _manifest(fmt).write(folder)
    os.utime(manifest, (1_000_000 + age, 1_000_000 + age))
    return folder / file


@pytest.fixture()
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs" / "proj"
    for name in ("exp", "exp-2", "exp-10", "other"):
        (root / name).mkdir(parents=True)
        (root / name / "best.pt").write_bytes(b"x")
    (root / "exp-11").mkdir()  # no best.pt: an unfinished run is not "the newest run"
    return root


def test_newest_run_is_the_highest_index_with_a_best_pt(runs: Path) -> None:
    assert RunFolder.latest(runs) == RunFolder(runs / "exp-10")
    assert resolve_artifact(runs) == runs / "exp-10" / "best.pt"
    assert RunFolder.latest(runs / "missing") is None


def test_run_folder_gives_best_pt_or_its_newest_export_for_a_backend(runs: Path) -> None:
    run = runs / "exp-2"
    old = _export(run, "onnx-fp32-b1", "onnx", "model.onnx", age=1)
    new = _export(run, "onnx-fp32-dyn", "onnx", "model.onnx", age=2)
    xml = _export(run, "openvino-fp32-b1", "openvino", "model.xml", age=0)
    assert resolve_artifact(run) == run / "best.pt"
    assert resolve_artifact(run, "onnxruntime") == new != old
    assert resolve_artifact(run, "openvino") == xml  # its own format before ONNX files
    assert resolve_artifact(xml.parent) == xml
    assert RunFolder.containing(xml) == RunFolder(run)
    assert RunFolder.containing(run / "best.pt") == RunFolder(run)
    with pytest.raises(ArtifactError, match="no export that the tensorrt backend can run"):
        resolve_artifact(run, "tensorrt")


def test_bad_targets_explain_themselves(tmp_path: Path) -> None:
    with pytest.raises(RunNotFoundError, match="no such file"):
        resolve_artifact(tmp_path / "nope.onnx")
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ArtifactError, match=r"unknown model file type '\.bin'"):
        resolve_artifact(tmp_path / "weights.bin")
    with pytest.raises(RunNotFoundError, match="no trained run"):
        resolve_artifact(tmp_path)
