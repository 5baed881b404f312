from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dfseg.config import ConfigError, load_project
from dfseg.config.settings import SettingsError
from dfseg.config.tasks import TASKS
from dfseg.config.template import render_project_template
from dfseg.config.variants import MODEL_VARIANTS

REPO = Path(__file__).resolve().parents[2]

MINIMAL = """\
project: {name: pets, task: detect, output: runs}
data:
  path: data/pets
  format: yolo
  classes: [cat, dog]
  image_size: [640, 640]
  keep_ratio: false
  split: {train: 0.8, val: 0.2, test: 0.0, seed: 42}
model: {size: s, pretrained: null}
train: {epochs: 50, batch_size: 8}
"""


def write(tmp_path: Path, text: str, name: str = "project.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(exc: pytest.ExceptionInfo[ConfigError]) -> dict[str, tuple[str, int | None]]:
    return {p.key: (p.message, p.line) for p in exc.value.problems}


def test_issue_example_validates_and_resolves_paths(tmp_path: Path) -> None:
    config = load_project(write(tmp_path, MINIMAL))
    assert config.data.path == tmp_path / "data" / "pets"
    assert config.project.output == tmp_path / "runs"
    assert config.output_root == tmp_path / "runs" / "pets"
    assert config.class_names == ["cat", "dog"]
    assert config.data.image_size == (640, 640)
    assert config.source == (tmp_path / "project.yaml").resolve()


def test_default_output_resolves_against_the_file(tmp_path: Path) -> None:
    config = load_project(write(tmp_path, "data: {path: d, classes: [a]}\n"))
    assert config.project.output == tmp_path / "runs"
    assert config.split_dir == tmp_path / "runs" / "project" / "split"


@pytest.mark.parametrize("name", ["detect.yaml", "segment.yaml"])
def test_examples_validate(name: str) -> None:
    config = load_project(REPO / "examples" / name)
    assert config.project.task in ("detect", "segment")
    assert config.class_names


def test_unknown_key_suggests_the_closest_one(tmp_path: Path) -> None:
    text = MINIMAL.replace("train: {epochs: 50, batch_size: 8}", "train:\n  epocs: 5\n")
    with pytest.raises(ConfigError) as exc:
        load_project(write(tmp_path, text))
    message, line = problems(exc)["train.epocs"]
    assert "did you mean 'train.epochs'" in message
    assert line == 11


def test_key_in_the_wrong_section_names_the_right_one(tmp_path: Path) -> None:
    text = MINIMAL.replace("  keep_ratio: false\n", "  keep_ratio: false\n  epochs: 3\n")
    with pytest.raises(ConfigError) as exc:
        load_project(write(tmp_path, text))
    assert "'train.epochs'" in problems(exc)["data.epochs"][0]


def test_every_error_is_listed_with_its_yaml_path(tmp_path: Path) -> None:
    text = (
        MINIMAL.replace("task: detect", "task: detct")
        .replace("epochs: 50", "epochs: 0")
        .replace("[640, 640]", "[640, 600]")
    )
    with pytest.raises(ConfigError) as exc:
        load_project(write(tmp_path, text))
    found = problems(exc)
    assert found["train.epochs"][0] == "must be > 0 (got 0)"
    assert "did you mean 'detect'" in found["project.task"][0]
    assert "multiple of 32" in found["data.image_size"][0]
    assert found["data.image_size"][1] == 6
    rendered = str(exc.value)
    assert "project.yaml:10: train.epochs: must be > 0" in rendered


def test_class_ids_must_be_zero_based_and_contiguous(tmp_path: Path) -> None:
    text = MINIMAL.replace("classes: [cat, dog]", "classes: {1: cat, 2: dog}")
    with pytest.raises(ConfigError) as exc:
        load_project(write(tmp_path, text))
    assert "0-based" in problems(exc)["data.classes"][0]
    ok = load_project(write(tmp_path, MINIMAL.replace("[cat, dog]", "{1: dog, 0: cat}"), "b.yaml"))
    assert ok.class_names == ["cat", "dog"]


def test_split_ratios_must_add_up(tmp_path: Path) -> None:
    text = MINIMAL.replace("val: 0.2", "val: 0.3")
    with pytest.raises(ConfigError) as exc:
        load_project(write(tmp_path, text))
    assert "must equal 1" in problems(exc)["data.split"][0]


def test_overrides_are_typed_and_validated(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    config = load_project(path, ["train.epochs=5", "model.size=n", "data.image_size=320"])
    assert config.train.epochs == 5
    assert config.model.size == "n"
    assert config.data.image_size == (320, 320)
    with pytest.raises(ConfigError) as exc:
        load_project(path, ["train.epochs=abc"])
    assert problems(exc)["train.epochs"][0] == "must be an integer (got 'abc')"
    with pytest.raises(ConfigError) as exc:
        load_project(path, ["train.epoch=3"])
    assert "did you mean 'train.epochs'" in problems(exc)["train.epoch"][0]
    with pytest.raises(ConfigError) as exc:
        load_project(path, ["epochs"])
    assert "key=value" in exc.value.problems[0].message


def test_override_paths_resolve_against_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, MINIMAL)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_project(path, ["data.path=mydata"])
    assert config.data.path == elsewhere / "mydata"
    weights = load_project(path, ["model.pretrained=w/best.pt"]).model
    assert weights.pretrained_path(None) == elsewhere / "w" / "best.pt"
    for name in ("coco", "obj2coco"):  # download names are not file names
        download = load_project(path, [f"model.pretrained={name}"]).model
        assert download.pretrained == name and download.pretrained_path(None) is None


def test_invalid_yaml_reports_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_project(write(tmp_path, "project:\n  name: [unclosed\ndata: {}\n"))
    assert exc.value.problems[0].message.startswith("invalid YAML")
    assert exc.value.problems[0].line is not None


def test_missing_file_and_folder_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_project(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a folder"):
        load_project(tmp_path)


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("size", list(MODEL_VARIANTS))
def test_init_template_validates_as_written(tmp_path: Path, task: str, size: str) -> None:
    text = render_project_template(name="demo", task=task, size=size, classes=["a", "b", "c"])
    config = load_project(write(tmp_path, text))
    assert (config.project.task, config.model.size) == (task, size)
    assert config.class_names == ["a", "b", "c"]
    assert "#" in text  # it is commented


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from dfseg.config import get_settings

    monkeypatch.setenv("DFSEG_WORKERS", "3")
    monkeypatch.setenv("DFSEG_DEVICE", "cpu")
    settings = get_settings()
    assert (settings.workers, settings.device) == (3, "cpu")
    monkeypatch.setenv("DFSEG_THREADS", "")  # empty means unset
    assert get_settings().threads is None
    monkeypatch.setenv("DFSEG_WORKERS", "-1")
    with pytest.raises(SettingsError, match=r"DFSEG_WORKERS='-1': .*greater than or equal to 0"):
        get_settings()


def test_a_bad_environment_variable_is_a_message_naming_it(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    project = write(tmp_path, "data:\n  path: data\n")
    env = {**os.environ, "DFSEG_WORKERS": "abc", "DFSEG_COLOR": "blue"}
    result = subprocess.run(
        [sys.executable, "-c", "from dfseg.cli.app import main; main()", "train", str(project)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "DFSEG_WORKERS='abc'" in result.stderr and "DFSEG_COLOR='blue'" in result.stderr


def test_config_and_help_do_not_import_torch() -> None:
    code = (
        "import sys, dfseg.config, dfseg.cli.app;"
        "heavy = [m for m in ('torch', 'cv2', 'albumentations') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_official_weights_that_do_not_exist_for_the_size_are_a_config_error(
    tmp_path: Path,
) -> None:
    text = render_project_template(name="demo", size="n", classes=["a"])
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_project(path, ["model.pretrained=obj2coco"])
    (problem,) = error.value.problems
    assert problem.key == "model.pretrained"
    assert "no official 'obj2coco' weights for size 'n'" in problem.message
    assert "coco" in problem.message  # what the size has
    for size, variant in MODEL_VARIANTS.items():  # every listed download validates
        for name in variant.pretrained:
            config = load_project(path, [f"model.size={size}", f"model.pretrained={name}"])
            assert config.model.pretrained_download == name
            assert config.model.pretrained_path(config.base_dir) is None

