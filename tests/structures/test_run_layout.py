"""The run folder's layout and what a TARGET argument designates (project file, run folder,
folder of runs, checkpoint, export folder, model file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dfseg.config import ConfigError
from dfseg.config.template import render_project_template
from dfseg.structures.run_layout import (
    RunFolder,
    RunNotFoundError,
    is_run_folder,
    resolve_target,
)


def _project(root: Path) -> Path:
    path = root / "project.yaml"
    path.write_text(render_project_template(name="pets", classes=["cat", "dog"]))
    return path


def _run(output_root: Path, name: str, *files: str) -> RunFolder:
    run = RunFolder(output_root / name)
    run.path.mkdir(parents=True)
    for file in files:
        (run.path / file).write_bytes(b"x")
    return run


def test_runs_are_numbered_never_reused_and_the_newest_holds_its_checkpoint(tmp_path: Path) -> None:
    first, second, third = (RunFolder.create(tmp_path) for _ in range(3))
    assert [r.path.name for r in (first, second, third)] == ["exp", "exp-2", "exp-3"]
    assert RunFolder.latest(tmp_path) is None  # nothing finished: no best.pt anywhere
    second.last.write_bytes(b"x")
    assert RunFolder.latest(tmp_path, "last") == second
    assert RunFolder.latest(tmp_path) is None
    first.best.write_bytes(b"x")
    assert RunFolder.latest(tmp_path) == first
    assert is_run_folder(second.path) and not is_run_folder(third.path)
    assert second.project_file.name == "project.yaml" and second.export_dir.name == "export"


def test_a_project_file_means_its_newest_run_with_overrides_applied(tmp_path: Path) -> None:
    project = _project(tmp_path)
    output = tmp_path / "runs" / "pets"
    with pytest.raises(RunNotFoundError, match=r"no trained run .* with a best\.pt"):
        resolve_target(project)
    _run(output, "exp", "best.pt", "last.pt")
    newest = _run(output, "exp-2", "best.pt")
    _run(output, "exp-3", "last.pt")  # crashed before best.pt: not the newest for inference
    target = resolve_target(project, ["train.epochs=3"])
    assert target.run == newest and target.file is None
    assert target.checkpoint() == newest.best
    config = target.project()
    assert config is not None and config.train.epochs == 3
    assert resolve_target(project, holding="last").run == RunFolder(output / "exp-3")
    with pytest.raises(ConfigError, match=r"train\.epocs"):
        resolve_target(project, ["train.epocs=3"])


def test_files_and_folders_inside_a_run(tmp_path: Path) -> None:
    output = tmp_path / "runs" / "pets"
    run = _run(output, "exp", "best.pt", "last.pt")
    export = run.export_dir / "onnx-fp32-b1"
    export.mkdir(parents=True)
    (export / "manifest.json").write_text("{}")
    assert resolve_target(run.path).file is None
    assert resolve_target(run.path).checkpoint("last") == run.last
    by_file = resolve_target(run.last)
    assert by_file.run == run and by_file.checkpoint("best") == run.last  # the file named
    by_export = resolve_target(export)
    assert by_export.run == run and by_export.file == export
    assert by_export.checkpoint() == run.best
    assert run.export_folders() == [export]
    assert resolve_target(output).run == run  # a folder of runs: its newest
    assert resolve_target(run.path).project() is None  # no project.yaml in this run
    with pytest.raises(RunNotFoundError, match="overrides need a project file"):
        resolve_target(run.path, ["train.epochs=3"])
    with pytest.raises(RunNotFoundError, match=r"project\.yaml: missing"):
        resolve_target(run.path).require_run()


def test_a_run_brings_its_own_project_file(tmp_path: Path) -> None:
    output = tmp_path / "runs" / "pets"
    run = _run(output, "exp", "best.pt")
    run.project_file.write_text(render_project_template(name="pets", classes=["cat"]))
    folder, config = resolve_target(run.path, ["train.epochs=7"]).require_run()
    assert folder == run and config.train.epochs == 7 and config.class_names == ["cat"]


def test_missing_things_say_what_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(RunNotFoundError, match="no such file or folder"):
        resolve_target(tmp_path / "nope")
    loose = tmp_path / "weights.pt"
    loose.write_bytes(b"x")
    target = resolve_target(loose)
    assert target.run is None and target.checkpoint() == loose
    with pytest.raises(RunNotFoundError, match="not a run folder"):
        target.require_run()
    run = _run(tmp_path / "runs", "exp", "last.pt")
    with pytest.raises(RunNotFoundError, match=r"best\.pt: not found"):
        resolve_target(run.path).checkpoint("best")
