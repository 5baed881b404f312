from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from dfseg.cli.app import app
from dfseg.config import load_project

runner = CliRunner()


def test_init_writes_a_valid_project_and_never_overwrites(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["init", str(tmp_path), "--task", "segment", "--size", "n", "--classes", "cat,dog"]
    )
    assert result.exit_code == 0, result.output
    config = load_project(tmp_path / "project.yaml")
    assert config.project.task == "segment"
    assert config.model.size == "n"
    assert config.class_names == ["cat", "dog"]

    before = (tmp_path / "project.yaml").read_text()
    again = runner.invoke(app, ["init", str(tmp_path)])
    assert again.exit_code == 2
    assert "already exists" in again.output
    assert (tmp_path / "project.yaml").read_text() == before


def test_version_and_help() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("dfseg ")
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "init" in result.output
