"""`check_dataset`: counts, per-class table, image integrity (truncated, corrupt), JSON dump."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dataset_builders import snapshot, write_image, write_text

from dfseg.data.check import check_dataset


def _dataset(root: Path) -> Path:
    write_text(root / "classes.txt", "cat\ndog\nbird\n")
    write_image(root / "images" / "a.jpg", 64, 48, seed=1)
    write_text(
        root / "labels" / "a.txt", "0 0.5 0.5 0.2 0.2\n0 0.3 0.3 0.1 0.1\n1 0.7 0.7 0.2 0.2\n"
    )
    write_image(root / "images" / "b.png", 64, 48, seed=2)
    write_text(root / "labels" / "b.txt", "1 0.5 0.5 0.2 0.2\n")
    write_image(root / "images" / "empty_label.jpg", 64, 48, seed=3)
    write_text(root / "labels" / "empty_label.txt", "")
    write_image(root / "images" / "no_label.jpg", 64, 48, seed=4)
    write_image(root / "images" / "bad_label.jpg", 64, 48, seed=5)
    write_text(root / "labels" / "bad_label.txt", "0 0.5 0.5 0.2 0.2\n9 0.5 0.5 0.2 0.2\n")
    return root


def test_counts_and_class_table(tmp_path: Path) -> None:
    report = check_dataset(_dataset(tmp_path), "yolo")
    # the bad row of bad_label.txt is dropped; the image stays with its valid row
    assert (report.images, report.usable, report.backgrounds, report.corrupt) == (5, 5, 2, 0)
    assert (report.instances, report.label_files, report.errors, report.warnings) == (5, 4, 1, 1)
    assert report.label_errors == 1 and not report.ok
    table = [(c.class_id, c.name, c.images, c.instances) for c in report.classes]
    assert table == [(0, "cat", 2, 3), (1, "dog", 2, 2), (2, "bird", 0, 0)]
    (error,) = [i for i in report.issues if i.severity == "error"]
    assert (error.code, error.path, error.line) == ("unknown-class", "labels/bad_label.txt", 2)
    (empty,) = [i for i in report.issues if i.code == "empty-class"]
    assert empty.severity == "warning" and "'bird'" in empty.message
    assert report.summary().startswith("5 images, 2 backgrounds, 0 corrupt, 5 instances, 1 label")


def test_a_dataset_without_images_is_an_error(tmp_path: Path) -> None:
    from dfseg.data.check import check_read
    from dfseg.data.formats.result import ReadResult
    from dfseg.structures import Dataset

    report = check_read(ReadResult(Dataset(tmp_path, "coco", ["cat"], [])))
    assert not report.ok and [i.code for i in report.issues if i.severity == "error"] == [
        "no-images"
    ]


def test_truncated_jpeg_is_a_warning_and_truncated_png_an_error(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    for name in ("a.jpg", "b.png"):
        path = root / "images" / name
        path.write_bytes(path.read_bytes()[:-200])
    report = check_dataset(root, "yolo")
    truncated = sorted((i.path, i.severity) for i in report.issues if i.code == "truncated-image")
    # a truncated JPEG still decodes (partly grey); a truncated PNG does not decode at all
    assert truncated == [("images/a.jpg", "warning"), ("images/b.png", "error")]
    assert report.usable == 4 and report.corrupt == 1 and report.label_errors == 1


def test_corrupt_pixel_data_found_by_verify_and_deep_decode(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    path = root / "images" / "b.png"
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT") + 40
    data[start : start + 64] = bytes(64)  # wreck the compressed pixels, keep the file length
    path.write_bytes(bytes(data))
    report = check_dataset(root, "yolo", deep=True)
    corrupt = [i for i in report.issues if i.code == "unreadable-image"]
    assert [i.path for i in corrupt] == ["images/b.png"]
    assert report.corrupt == 1 and report.usable == 4
    assert [c.instances for c in report.classes] == [3, 1, 0]  # b.png's dog is gone


def test_report_dumps_to_json_with_ok(tmp_path: Path) -> None:
    report = check_dataset(_dataset(tmp_path), "yolo")
    content = json.loads(report.model_dump_json())
    assert content["ok"] is False
    assert content["issues"][0]["hint"]
    assert {"images", "backgrounds", "corrupt", "warnings", "errors", "classes"} <= set(content)


def test_check_never_writes_and_reports_progress(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    before = snapshot(root)
    events = []
    check_dataset(root, "yolo", deep=True, progress=events.append)
    assert snapshot(root) == before
    assert [e.task for e in events if e.completed == e.total][-2:] == [
        "check images", "find duplicates"
    ]  # fmt: skip
    assert {e.task for e in events} == {"read labels", "check images", "find duplicates"}
    assert events[-1].completed == events[-1].total == 5


@pytest.mark.shared
def test_real_kangaroo_truncated_jpeg_is_reported(shared_data_dir: Path) -> None:
    root = shared_data_dir / "kangaroo-voc"
    truncated = set()
    for path in sorted((root / "images").glob("*.jpg")):
        if b"\xff\xd9" not in path.read_bytes()[-4096:]:
            truncated.add(f"images/{path.name}")
    report = check_dataset(root, "voc", ["kangaroo"])
    assert {i.path for i in report.issues if i.code == "truncated-image"} == truncated
    assert report.ok and report.corrupt == 0
