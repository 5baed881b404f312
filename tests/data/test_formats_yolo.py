"""YOLO txt reading: layouts, class names, boxes/polygons in pixels, every issue kind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dataset_builders import snapshot, write_image, write_text
from PIL import Image

from dfseg.data.formats.issues import DatasetError
from dfseg.data.reading import read_dataset, read_dataset_with_details
from dfseg.structures import DataIssue, Dataset, Polygons


def _issues(dataset: Dataset, code: str) -> list[DataIssue]:
    return [issue for issue in dataset.issues if issue.code == code]


def _one_image(tmp_path: Path, label: str, width: int = 100, height: int = 50) -> Path:
    write_image(tmp_path / "images" / "a.jpg", width, height)
    write_text(tmp_path / "labels" / "a.txt", label)
    write_text(tmp_path / "classes.txt", "cat\ndog\n")
    return tmp_path


def test_box_and_polygon_rows_become_absolute_pixels(tmp_path: Path) -> None:
    root = _one_image(tmp_path, "0 0.5 0.5 0.2 0.4\n1 0.1 0.2 0.3 0.2 0.3 0.6\n")
    dataset = read_dataset(root, "yolo")
    image = dataset.images[0]
    assert (image.width, image.height) == (100, 50)
    np.testing.assert_array_equal(image.labels, [0, 1])
    # box: centre (50, 25), size (20, 20); polygon bounds x 10..30, y 10..30
    np.testing.assert_allclose(image.boxes_xyxy, [[40, 15, 60, 35], [10, 10, 30, 30]], atol=1e-4)
    assert image.segments[0] is None
    assert isinstance(image.segments[1], Polygons)
    np.testing.assert_allclose(
        image.segments[1].rings[0], [[10, 10], [30, 10], [30, 30]], atol=1e-4
    )
    assert image.label_path == root / "labels" / "a.txt"
    assert dataset.class_names == ["cat", "dog"]
    assert [i.code for i in dataset.issues] == ["box-only-instances"]


def test_nested_and_roboflow_layouts(tmp_path: Path) -> None:
    for split in ("train", "val"):
        write_image(tmp_path / "nested" / "images" / split / f"{split}.png", 32, 32)
        write_text(tmp_path / "nested" / "labels" / split / f"{split}.txt", "0 0.5 0.5 0.5 0.5\n")
        write_image(tmp_path / "robo" / split / "images" / f"{split}.jpg", 32, 32)
        write_text(tmp_path / "robo" / split / "labels" / f"{split}.txt", "0 0.5 0.5 0.5 0.5\n")
    for name in ("nested", "robo"):
        dataset = read_dataset(tmp_path / name, "yolo", ["thing"])
        assert len(dataset.images) == 2
        assert all(image.num_instances == 1 for image in dataset.images)


def test_side_by_side_layout_and_dotted_names(tmp_path: Path) -> None:
    write_image(tmp_path / "a_jpg.rf.123.jpg", 20, 20)
    write_text(tmp_path / "a_jpg.rf.123.txt", "0 0.5 0.5 1 1\n")
    write_image(tmp_path / "b.png", 20, 20)
    write_text(tmp_path / "classes.txt", "thing\n")
    dataset = read_dataset(tmp_path, "yolo")
    by_name = {image.image_path.name: image for image in dataset.images}
    np.testing.assert_allclose(by_name["a_jpg.rf.123.jpg"].boxes_xyxy, [[0, 0, 20, 20]])
    assert by_name["b.png"].is_background
    assert [i.path for i in _issues(dataset, "missing-label")] == ["b.png"]


def test_images_outside_images_folder_are_ignored_and_reported(tmp_path: Path) -> None:
    root = _one_image(tmp_path, "0 0.5 0.5 0.2 0.2\n")
    write_image(root / "test" / "x.jpg", 10, 10)
    dataset = read_dataset(root, "yolo")
    assert [image.image_path.name for image in dataset.images] == ["a.jpg"]
    (issue,) = _issues(dataset, "unlisted-image")
    assert "test/x.jpg" in issue.message


def test_class_names_from_data_yaml_mapping_and_argument(tmp_path: Path) -> None:
    write_image(tmp_path / "images" / "a.jpg", 10, 10)
    write_text(tmp_path / "labels" / "a.txt", "1 0.5 0.5 0.2 0.2\n")
    write_text(tmp_path / "data.yaml", "names:\n  0: cat\n  1: dog\n")
    assert read_dataset(tmp_path, "yolo").class_names == ["cat", "dog"]
    assert read_dataset(tmp_path, "yolo", ["a", "b", "c"]).class_names == ["a", "b", "c"]
    write_text(tmp_path / "data.yaml", "names:\n  0: cat\n  2: dog\n")
    with pytest.raises(DatasetError, match="without gaps"):
        read_dataset(tmp_path, "yolo")


def test_missing_class_names_error_says_where_it_looked(tmp_path: Path) -> None:
    write_image(tmp_path / "images" / "a.jpg", 10, 10)
    write_text(tmp_path / "labels" / "a.txt", "0 0.5 0.5 0.2 0.2\n")
    with pytest.raises(DatasetError, match=r"classes\.txt.*data\.yaml.*data\.classes"):
        read_dataset(tmp_path, "yolo")


def test_no_labels_found_names_the_expected_label_path(tmp_path: Path) -> None:
    write_image(tmp_path / "images" / "train" / "a.jpg", 10, 10)
    write_text(tmp_path / "labelz" / "train" / "a.txt", "0 0.5 0.5 0.2 0.2\n")
    with pytest.raises(DatasetError, match=r"No labels found.*labels/train/a\.txt"):
        read_dataset(tmp_path, "yolo", ["thing"])
    write_text(tmp_path / "labels" / "train" / "a.txt", "0 0.5 0.5 0.2 0.2\n")
    with pytest.raises(DatasetError, match=r"labels seem to be in .*point data\.path to"):
        read_dataset(tmp_path / "images", "yolo", ["thing"])
    with pytest.raises(DatasetError, match="No images found"):
        read_dataset(tmp_path / "labelz", "yolo", ["thing"])


@pytest.mark.parametrize(
    ("row", "code"),
    [
        ("0 0.5 abc 0.2 0.2", "bad-number"),
        ("0 0.5 0.5", "wrong-column-count"),
        ("0 0.1 0.1 0.2 0.2 0.3", "odd-coordinates"),
        ("2 0.5 0.5 0.2 0.2", "unknown-class"),
        ("-1 0.5 0.5 0.2 0.2", "unknown-class"),
        ("0.5 0.5 0.5 0.2 0.2", "unknown-class"),
        ("0 50 25 20 10", "not-normalised"),
        ("0 0.5 1.3 0.2 0.2", "out-of-range"),
        ("0 0.5 nan 0.2 0.2", "bad-number"),
    ],
)
def test_a_row_error_drops_the_row_names_the_line_and_keeps_the_image(
    tmp_path: Path, row: str, code: str
) -> None:
    root = _one_image(tmp_path, f"0 0.5 0.5 0.2 0.2\n\n{row}\n")
    result = read_dataset_with_details(root, "yolo")
    (image,) = result.dataset.images
    np.testing.assert_array_equal(image.labels, [0])  # the valid row is kept
    assert result.excluded_images == []
    (issue,) = [i for i in result.dataset.issues if i.severity == "error"]
    assert (issue.code, issue.path, issue.line) == (code, "labels/a.txt", 3)
    assert issue.hint


def test_every_error_of_a_file_is_reported(tmp_path: Path) -> None:
    root = _one_image(tmp_path, "5 0.5 0.5 0.2 0.2\n0 0.5 0.5\n0 20 20 40 20 40 40\n")
    dataset = read_dataset(root, "yolo")
    assert [(i.code, i.line) for i in dataset.issues] == [
        ("unknown-class", 1),
        ("wrong-column-count", 2),
        ("not-normalised", 3),
    ]


def test_warnings_are_fixed_on_the_fly(tmp_path: Path) -> None:
    rows = [
        "0 0.5 0.5 0.2 0.2",
        "0 0.5 0.5 0.2 0.2",  # duplicate
        "1 1.03 0.5 0.2 0.2",  # slightly out: clipped with a warning
        "1 0.5 0.5 1.005 0.2",  # up to a pixel out: clipped silently
        "0 0.5 0.5 0 0.2",  # zero width
        "1 0.1 0.1 0.2 0.2 0.3 0.3",  # collinear polygon
    ]
    root = _one_image(tmp_path, "\n".join(rows) + "\n")
    dataset = read_dataset(root, "yolo")
    assert [
        (i.code, i.line, i.severity) for i in dataset.issues if i.code != "box-only-instances"
    ] == [
        ("duplicate-row", 2, "warning"),
        ("clipped", 3, "warning"),  # row 4 (a pixel out) is clipped without a warning
        ("degenerate", 5, "warning"),
        ("degenerate", 6, "warning"),
    ]
    image = dataset.images[0]
    np.testing.assert_array_equal(image.labels, [0, 1, 1])
    assert image.boxes_xyxy[1, 2] == pytest.approx(100.0)  # x2 = 1.13 * 100 clipped to the edge
    assert image.boxes_xyxy[2, 0] == pytest.approx(0.0)  # x1 = -0.25 px clipped silently


def test_empty_label_file_is_a_silent_background(tmp_path: Path) -> None:
    root = _one_image(tmp_path, "")
    dataset = read_dataset(root, "yolo")
    assert dataset.images[0].is_background
    assert dataset.issues == []


def test_corrupt_and_empty_images_are_excluded(tmp_path: Path) -> None:
    root = _one_image(tmp_path, "0 0.5 0.5 0.2 0.2\n")
    write_text(root / "images" / "broken.jpg", "not an image")
    (root / "images" / "empty.png").write_bytes(b"")
    write_text(root / "labels" / "orphan.txt", "0 0.5 0.5 0.2 0.2\n")
    result = read_dataset_with_details(root, "yolo")
    assert [i.image_path.name for i in result.dataset.images] == ["a.jpg"]
    assert sorted(p.name for p in result.excluded_images) == ["broken.jpg", "empty.png"]
    codes = {(i.code, i.path) for i in result.dataset.issues}
    assert ("unreadable-image", "images/broken.jpg") in codes
    assert ("empty-image", "images/empty.png") in codes
    assert ("label-without-image", "labels/orphan.txt") in codes


def test_exif_rotation_swaps_the_size(tmp_path: Path) -> None:
    root = _one_image(tmp_path, "0 0.5 0.5 0.2 0.2\n")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when displayed
    write_image(root / "images" / "a.jpg", 100, 50, exif=exif)
    dataset = read_dataset(root, "yolo")
    assert (dataset.images[0].width, dataset.images[0].height) == (50, 100)
    assert _issues(dataset, "exif-rotated")[0].path == "images/a.jpg"


def test_reading_never_writes(tmp_path: Path) -> None:
    root = _one_image(tmp_path, "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n7 1 1 1 1\n")
    before = snapshot(root)
    read_dataset(root, "yolo")
    assert snapshot(root) == before


def test_progress_reports_every_image(tmp_path: Path) -> None:
    root = _one_image(tmp_path, "0 0.5 0.5 0.2 0.2\n")
    events = []
    read_dataset(root, "yolo", progress=events.append)
    assert [(e.completed, e.total) for e in events] == [(1, 1)]


def test_images_sharing_a_label_file_are_reported(tmp_path: Path) -> None:
    write_text(tmp_path / "classes.txt", "x\n")
    for name in ("a.jpg", "a.png"):
        write_image(tmp_path / name, 8, 8)
    write_text(tmp_path / "a.txt", "0 0.5 0.5 0.5 0.5\n")
    (issue,) = _issues(read_dataset(tmp_path, "yolo"), "shared-label")
    assert issue.path == "a.txt" and "a.jpg, a.png" in issue.message
