"""Object sizes at the training input size, on hand-made annotations with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from dfseg.cli.app import app
from dfseg.config.template import render_project_template
from dfseg.data.object_sizes import object_size_report
from dfseg.data.synthetic import generate_synthetic_dataset
from dfseg.structures import Dataset, ImageAnnotation


def _image(name: str, boxes: list[list[float]], labels: list[int]) -> ImageAnnotation:
    box_array = np.array(boxes, np.float32).reshape(-1, 4)
    label_array = np.array(labels, dtype=np.int64)
    return ImageAnnotation(Path(name), 1000, 500, labels=label_array, boxes_xyxy=box_array)


def _dataset() -> Dataset:
    images = [
        # 10x10 -> stretch 6.4x12.8 (small), letterbox 6.4x6.4 (small); 5x2 -> tiny either way;
        # 200x100 -> stretch 128x128 (large), letterbox 128x64 (medium)
        _image("a.jpg", [[0, 0, 10, 10], [50, 50, 55, 52], [100, 100, 300, 200]], [0, 0, 1]),
        _image("crowded.jpg", [[i, 0, i + 3, 3] for i in range(301)], [1] * 301),
        _image("empty.jpg", [], []),
    ]
    return Dataset(Path("."), "yolo", ["cat", "dog"], images)


def test_sizes_follow_the_resize_training_applies() -> None:
    stretched = object_size_report(_dataset(), (640, 640), keep_ratio=False)
    cat, dog = stretched.classes
    assert (cat.small, cat.medium, cat.large, cat.tiny) == (2, 0, 0, 1)
    assert (dog.large, dog.medium) == (1, 0) and dog.small == 301 and dog.tiny == 301
    letterboxed = object_size_report(_dataset(), (640, 640), keep_ratio=True)
    assert (letterboxed.classes[1].large, letterboxed.classes[1].medium) == (0, 1)


def test_objects_per_image_and_the_facts() -> None:
    report = object_size_report(_dataset(), (640, 640), keep_ratio=False, num_queries=300)
    assert report.per_image["0"] == 1 and report.per_image["2-5"] == 1
    assert report.per_image["301+"] == 1 and report.max_per_image == 301
    assert report.over_queries == 1
    facts = " | ".join(report.facts)
    assert "1 images hold more than 300 objects" in facts and "raise model.num_queries" in facts
    assert "under 16 px on their shorter side at 640x640" in facts
    assert "302 instances are under 4 px" in facts
    assert report.tiny_examples[0] == "a.jpg: cat"


def test_check_reports_sizes_and_writes_the_plot(tmp_path: Path) -> None:
    generate_synthetic_dataset(tmp_path / "data", num_images=6, image_size=(120, 160), seed=1)
    project = tmp_path / "project.yaml"
    project.write_text(render_project_template(
        name="sizes", task="detect", size="n", classes=["circle", "square", "triangle"],
        image_size=(320, 320),
    ))  # fmt: skip
    plot = tmp_path / "sizes.png"
    result = CliRunner().invoke(app, ["check", str(project), "--json", "--plot", str(plot)])
    sizes = json.loads(result.stdout)["sizes"]
    assert sizes["input_hw"] == [320, 320] and plot.stat().st_size > 10_000
    counted = sum(c["small"] + c["medium"] + c["large"] for c in sizes["classes"])
    assert counted == json.loads(result.stdout)["instances"]
