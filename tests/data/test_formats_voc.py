"""Pascal VOC XML reading: layouts, 1-based boxes, difficult, class names, issues."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dataset_builders import snapshot, voc_xml, write_image, write_text

from dfseg.data.formats.issues import DatasetError
from dfseg.data.reading import read_dataset, read_dataset_with_details


def _voc(root: Path, objects: list[dict[str, Any]], size: tuple[int, int] = (50, 40)) -> Path:
    write_image(root / "JPEGImages" / "a.jpg", 50, 40)
    write_text(root / "Annotations" / "a.xml", voc_xml("a.jpg", size, objects))
    return root


def test_one_based_boxes_and_difficult_flags(tmp_path: Path) -> None:
    objects = [
        {"name": "cat", "box": (1, 1, 50, 40)},  # the whole image
        {"name": "dog", "box": (11, 6, 20, 15), "difficult": 1},
    ]
    dataset = read_dataset(_voc(tmp_path, objects), "voc", ["cat", "dog"])
    image = dataset.images[0]
    np.testing.assert_allclose(image.boxes_xyxy, [[0, 0, 50, 40], [10, 5, 20, 15]])
    np.testing.assert_array_equal(image.labels, [0, 1])
    np.testing.assert_array_equal(image.difficult, [False, True])
    assert image.label_path == tmp_path / "Annotations" / "a.xml"
    assert dataset.issues == []


def test_unknown_class_is_an_error_naming_file_object_and_line(tmp_path: Path) -> None:
    objects = [{"name": "cat", "box": (1, 1, 5, 5)}, {"name": "wallaby", "box": (1, 1, 5, 5)}]
    result = read_dataset_with_details(_voc(tmp_path, objects), "voc", ["cat"])
    (image,) = result.dataset.images  # the image keeps its cat; the wallaby is dropped
    assert image.labels.tolist() == [0] and result.excluded_images == []
    (issue,) = result.dataset.issues
    assert (issue.code, issue.severity, issue.path) == (
        "unknown-class",
        "error",
        "Annotations/a.xml",
    )
    assert "object 2" in issue.message and "'wallaby'" in issue.message
    lines = (tmp_path / "Annotations" / "a.xml").read_text().splitlines()
    assert issue.line is not None and "<object>" in lines[issue.line - 1]
    assert lines[issue.line - 1 :].index("    <name>wallaby</name>") == 1


def test_size_mismatch_trusts_the_image_and_zero_based_boxes_clip(tmp_path: Path) -> None:
    root = _voc(tmp_path, [{"name": "cat", "box": (0, 0, 10, 10)}], size=(500, 400))
    dataset = read_dataset(root, "voc", ["cat"])
    assert (dataset.images[0].width, dataset.images[0].height) == (50, 40)
    assert sorted(i.code for i in dataset.issues) == ["clipped", "size-mismatch"]
    np.testing.assert_allclose(dataset.images[0].boxes_xyxy, [[0, 0, 10, 10]])


def test_box_far_outside_is_an_error_and_zero_area_box_is_dropped(tmp_path: Path) -> None:
    root = _voc(tmp_path, [{"name": "cat", "box": (5, 5, 500, 10)}])
    assert read_dataset(root, "voc", ["cat"]).issues[0].code == "out-of-range"
    root = _voc(tmp_path, [{"name": "cat", "box": (5, 5, 4, 10)}])
    dataset = read_dataset(root, "voc", ["cat"])
    assert dataset.images[0].is_background
    assert [i.code for i in dataset.issues] == ["degenerate"]


def test_class_names_inferred_sorted_when_not_given(tmp_path: Path) -> None:
    objects = [{"name": "zebra", "box": (1, 1, 5, 5)}, {"name": "ant", "box": (1, 1, 5, 5)}]
    dataset = read_dataset(_voc(tmp_path, objects), "voc")
    assert dataset.class_names == ["ant", "zebra"]
    np.testing.assert_array_equal(dataset.images[0].labels, [1, 0])
    assert [i.code for i in dataset.issues] == ["inferred-classes"]
    write_text(tmp_path / "classes.txt", "zebra\nant\n")
    assert read_dataset(tmp_path, "voc").class_names == ["zebra", "ant"]


def test_side_by_side_layout_backgrounds_and_orphans(tmp_path: Path) -> None:
    write_image(tmp_path / "sub" / "a.png", 20, 20)
    write_text(tmp_path / "sub" / "a.xml", voc_xml("renamed.png", (20, 20), []))
    write_image(tmp_path / "sub" / "b.png", 20, 20)
    write_text(tmp_path / "c.xml", voc_xml("c.png", (20, 20), [{"name": "x", "box": (1, 1, 4, 4)}]))
    dataset = read_dataset(tmp_path, "voc", ["x"])
    assert [image.image_path.name for image in dataset.images] == ["a.png", "b.png"]
    assert all(image.is_background for image in dataset.images)
    assert sorted((i.code, i.path) for i in dataset.issues) == [
        ("label-without-image", "c.xml"),
        ("missing-label", "sub/b.png"),
    ]


def test_malformed_xml_names_the_line(tmp_path: Path) -> None:
    write_image(tmp_path / "annots" / "x.jpg", 10, 10)
    write_text(tmp_path / "annots" / "x.xml", "<annotation>\n  <object>\n</annotation>\n")
    write_image(tmp_path / "images" / "x.jpg", 10, 10)
    dataset = read_dataset(tmp_path, "voc", ["cat"])
    bad = [i for i in dataset.issues if i.code == "bad-xml"]
    assert [(i.path, i.line) for i in bad] == [("annots/x.xml", 3)]


def test_no_xml_files_is_a_clear_error(tmp_path: Path) -> None:
    write_image(tmp_path / "images" / "a.jpg", 10, 10)
    with pytest.raises(DatasetError, match=r"No VOC XML files.*Annotations/ \+ JPEGImages/"):
        read_dataset(tmp_path, "voc", ["cat"])


def test_reading_never_writes(tmp_path: Path) -> None:
    root = _voc(tmp_path, [{"name": "cat", "box": (1, 1, 5, 5)}])
    before = snapshot(root)
    read_dataset(root, "voc")
    assert snapshot(root) == before
