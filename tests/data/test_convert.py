"""Converting to YOLO and COCO: round trips, what each format cannot hold, never overwriting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from dataset_builders import snapshot, voc_xml, write_image, write_text

from dfseg.data.convert import ConvertError, convert_dataset
from dfseg.data.reading import read_dataset
from dfseg.ops.masks import mask_to_rle, segment_to_mask
from dfseg.structures import RLE, Dataset, ImageAnnotation, Polygons


def _yolo_source(root: Path) -> Path:
    write_text(root / "classes.txt", "cat\ndog\n")
    write_image(root / "images" / "train" / "a.jpg", 64, 48, seed=1)
    write_text(
        root / "labels" / "train" / "a.txt",
        "0 0.5 0.5 0.25 0.5\n1 0.1 0.1 0.4 0.15 0.3 0.6 0.05 0.5\n",
    )
    write_image(root / "images" / "val" / "b.png", 40, 40, seed=2)
    write_text(root / "labels" / "val" / "b.txt", "1 0.2 0.2 0.8 0.2 0.5 0.9\n")
    write_image(root / "images" / "val" / "c.png", 40, 40, seed=3)
    write_text(root / "labels" / "val" / "c.txt", "")
    return root


def _assert_same(first: Dataset, second: Dataset, box_atol: float = 1e-3) -> None:
    assert first.class_names == second.class_names
    assert [im.image_path.name for im in first.images] == [
        im.image_path.name for im in second.images
    ]
    for a, b in zip(first.images, second.images, strict=True):
        assert (a.width, a.height) == (b.width, b.height)
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_allclose(a.boxes_xyxy, b.boxes_xyxy, atol=box_atol)
        for sa, sb in zip(a.segments, b.segments, strict=True):
            assert (sa is None) == (sb is None)
            if isinstance(sa, Polygons) and isinstance(sb, Polygons):
                for ra, rb in zip(sa.rings, sb.rings, strict=True):
                    np.testing.assert_allclose(ra, rb, atol=box_atol)


def test_yolo_to_coco_to_yolo_round_trip(tmp_path: Path) -> None:
    original = read_dataset(_yolo_source(tmp_path / "src"), "yolo")
    coco_report = convert_dataset(original, tmp_path / "coco", "coco")
    as_coco = read_dataset(tmp_path / "coco", "coco")
    _assert_same(original, as_coco)
    assert (coco_report.images, coco_report.instances, coco_report.segments) == (3, 3, 2)
    content = json.loads((tmp_path / "coco" / "annotations.json").read_text())
    assert content["categories"] == [
        {"id": 1, "name": "cat", "supercategory": "cat"},
        {"id": 2, "name": "dog", "supercategory": "dog"},
    ]
    assert sorted(i["file_name"] for i in content["images"]) == [
        "images/train/a.jpg",
        "images/val/b.png",
        "images/val/c.png",
    ]
    convert_dataset(as_coco, tmp_path / "yolo", "yolo")
    _assert_same(original, read_dataset(tmp_path / "yolo", "yolo"))
    assert (tmp_path / "yolo" / "labels" / "val" / "c.txt").read_text() == ""  # background


def test_voc_to_coco_keeps_boxes(tmp_path: Path) -> None:
    write_image(tmp_path / "src" / "JPEGImages" / "k.jpg", 50, 40)
    objects = [{"name": "roo", "box": (3, 4, 30, 35), "difficult": 1}]
    write_text(tmp_path / "src" / "Annotations" / "k.xml", voc_xml("k.jpg", (50, 40), objects))
    original = read_dataset(tmp_path / "src", "voc", ["roo"])
    report = convert_dataset(original, tmp_path / "out", "coco")
    _assert_same(original, read_dataset(tmp_path / "out", "coco"))
    assert report.boxes_only == 1 and any("difficult" in note for note in report.notes)


def _rle_dataset(root: Path) -> Dataset:
    image_path = write_image(root / "img.png", 40, 30)
    mask = np.zeros((30, 40), np.uint8)
    mask[2:10, 3:12] = 1
    mask[15:25, 20:35] = 1  # a second, separate part
    rle = mask_to_rle(mask)
    two_squares = Polygons(
        rings=(
            np.array([[1, 1], [6, 1], [6, 6], [1, 6]], np.float32),
            np.array([[30, 20], [38, 20], [38, 28], [30, 28]], np.float32),
        )
    )
    image = ImageAnnotation(
        image_path,
        40,
        30,
        labels=np.array([0, 1, 0], np.int64),
        boxes_xyxy=np.array([[3, 2, 35, 25], [1, 1, 38, 28], [0, 0, 40, 30]], np.float32),
        segments=[RLE(rle["counts"], 30, 40), two_squares, None],
        iscrowd=np.array([False, False, True]),
    )
    return Dataset(root, "coco", ["a", "b"], [image])


def test_rle_and_multi_part_polygons_to_yolo(tmp_path: Path) -> None:
    dataset = _rle_dataset(tmp_path / "src")
    report = convert_dataset(dataset, tmp_path / "out", "yolo")
    assert (report.instances, report.segments, report.dropped_crowd) == (2, 2, 1)
    assert any("crowd" in note for note in report.notes)
    back = read_dataset(tmp_path / "out", "yolo").images[0]
    source = dataset.images[0]
    for k in range(2):
        expected = segment_to_mask(source.segments[k], 30, 40)
        np.testing.assert_array_equal(segment_to_mask(back.segments[k], 30, 40), expected)


def test_coco_output_keeps_rle_and_crowd(tmp_path: Path) -> None:
    dataset = _rle_dataset(tmp_path / "src")
    convert_dataset(dataset, tmp_path / "out", "coco")
    content = json.loads((tmp_path / "out" / "annotations.json").read_text())
    first, _, crowd = content["annotations"]
    assert first["segmentation"]["size"] == [30, 40] and first["area"] == 8 * 9 + 10 * 15
    assert crowd["iscrowd"] == 1 and "segmentation" not in crowd
    back = read_dataset(tmp_path / "out", "coco").images[0]
    np.testing.assert_array_equal(back.iscrowd, [False, False, True])
    assert isinstance(back.segments[0], RLE)


def test_never_overwrites_and_symlinks(tmp_path: Path) -> None:
    original = read_dataset(_yolo_source(tmp_path / "src"), "yolo")
    convert_dataset(original, tmp_path / "out", "yolo", images="symlink")
    linked = tmp_path / "out" / "images" / "train" / "a.jpg"
    assert linked.is_symlink() and linked.resolve() == (tmp_path / "src/images/train/a.jpg")
    before = snapshot(tmp_path)
    with pytest.raises(ConvertError, match="already exist"):
        convert_dataset(original, tmp_path / "out", "yolo")
    assert snapshot(tmp_path) == before


def test_label_file_clash_is_refused(tmp_path: Path) -> None:
    write_text(tmp_path / "src" / "classes.txt", "x\n")
    for name in ("a.jpg", "a.png"):
        write_image(tmp_path / "src" / name, 8, 8)
    write_text(tmp_path / "src" / "a.txt", "0 0.5 0.5 0.5 0.5\n")
    dataset = read_dataset(tmp_path / "src", "yolo")
    with pytest.raises(ConvertError, match="share the label file"):
        convert_dataset(dataset, tmp_path / "out", "yolo")
    assert not (tmp_path / "out").exists()


@pytest.mark.shared
def test_real_potholes_round_trip_through_coco(shared_data_dir: Path, tmp_path: Path) -> None:
    original = read_dataset(shared_data_dir / "potholes-yolo-seg", "yolo")
    convert_dataset(original, tmp_path / "coco", "coco", images="symlink")
    _assert_same(original, read_dataset(tmp_path / "coco", "coco"))
