"""COCO JSON reading: category mapping, polygons and RLE, crowd, file discovery, issues."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dataset_builders import snapshot, write_image, write_json, write_text
from pycocotools import mask as coco_mask

from dfseg.data.formats.issues import DatasetError
from dfseg.data.reading import read_dataset, read_dataset_with_details
from dfseg.ops.masks import segment_to_mask
from dfseg.structures import RLE, Polygons

CATEGORIES = [{"id": 3, "name": "fig"}, {"id": 1, "name": "date"}, {"id": 7, "name": "nut"}]


def _coco(images: list[dict[str, Any]], annotations: list[dict[str, Any]]) -> dict[str, Any]:
    return {"images": images, "annotations": annotations, "categories": CATEGORIES}


def _dataset(
    tmp_path: Path, annotations: list[dict[str, Any]], size: tuple[int, int] = (40, 30)
) -> Path:
    write_image(tmp_path / "images" / "a.jpg", *size)
    image = {"id": 5, "file_name": "a.jpg", "width": size[0], "height": size[1]}
    write_json(tmp_path / "train.json", _coco([image], annotations))
    return tmp_path


def _ann(**fields: Any) -> dict[str, Any]:
    return {"id": 1, "image_id": 5, "category_id": 1, "iscrowd": 0, **fields}


def test_non_contiguous_category_ids_map_to_contiguous_classes(tmp_path: Path) -> None:
    root = _dataset(
        tmp_path,
        [_ann(bbox=[2, 3, 10, 5], category_id=7), _ann(id=2, bbox=[0, 0, 4, 4], category_id=3)],
    )
    dataset = read_dataset(root, "coco")
    assert dataset.class_names == ["date", "fig", "nut"]  # ascending category id
    assert dataset.source_class_ids == [1, 3, 7]
    image = dataset.images[0]
    np.testing.assert_array_equal(image.labels, [2, 1])
    np.testing.assert_allclose(image.boxes_xyxy, [[2, 3, 12, 8], [0, 0, 4, 4]])
    assert image.segments == [None, None]
    assert [i.code for i in dataset.issues] == ["remapped-categories"]


def test_class_names_match_categories_by_name(tmp_path: Path) -> None:
    root = _dataset(tmp_path, [_ann(bbox=[2, 3, 10, 5], category_id=7)])
    dataset = read_dataset(root, "coco", ["nut", "fig", "date", "kiwi"])
    assert dataset.source_class_ids == [7, 3, 1, -1]
    np.testing.assert_array_equal(dataset.images[0].labels, [0])
    assert any(i.code == "unused-class" and "kiwi" in i.message for i in dataset.issues)
    with pytest.raises(DatasetError, match=r"\['fig', 'nut'\] are not in the class list"):
        read_dataset(root, "coco", ["date"])


def test_polygons_compressed_and_uncompressed_rle_and_crowd(tmp_path: Path) -> None:
    mask = np.zeros((30, 40), np.uint8)
    mask[5:10, 20:30] = 1
    compressed = coco_mask.encode(np.asfortranarray(mask))
    column_major = mask.T.ravel()  # starts with background, as COCO runs do
    boundaries = np.flatnonzero(np.diff(column_major)) + 1
    uncompressed_counts = np.diff(np.concatenate([[0], boundaries, [column_major.size]])).tolist()
    annotations = [
        _ann(segmentation=[[2, 2, 12, 2, 12, 8, 2, 8]], bbox=[2, 2, 10, 6]),
        _ann(id=2, segmentation={"size": [30, 40], "counts": compressed["counts"].decode()}),
        _ann(id=3, iscrowd=1, segmentation={"size": [30, 40], "counts": uncompressed_counts}),
    ]
    dataset = read_dataset(_dataset(tmp_path, annotations), "coco")
    image = dataset.images[0]
    assert isinstance(image.segments[0], Polygons)
    assert isinstance(image.segments[1], RLE) and isinstance(image.segments[1].counts, str)
    assert isinstance(image.segments[2], RLE) and isinstance(image.segments[2].counts, list)
    for segment in image.segments[1:]:
        np.testing.assert_array_equal(segment_to_mask(segment, 30, 40), mask)
    np.testing.assert_allclose(image.boxes_xyxy[1:], [[20, 5, 30, 10]] * 2)  # from the masks
    np.testing.assert_array_equal(image.iscrowd, [False, False, True])
    assert dataset.instance_counts().tolist() == [2, 0, 0]  # crowd not counted
    assert any(i.code == "crowd" for i in dataset.issues)


def test_json_discovery(tmp_path: Path) -> None:
    root = _dataset(tmp_path, [_ann(bbox=[2, 3, 10, 5])])
    as_file = read_dataset(root / "train.json", "coco")
    assert len(as_file.images) == 1 and as_file.root == root
    write_json(root / "val.json", _coco([], []))
    with pytest.raises(DatasetError, match=r"Several JSON files.*train\.json, val\.json"):
        read_dataset(root, "coco")
    assert read_dataset(root, "coco", annotations=root / "val.json").images == []
    with pytest.raises(DatasetError, match="No COCO JSON found"):
        read_dataset(root / "images", "coco")


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    write_text(tmp_path / "x.json", '{"images": [\n  {"id": 1,,}\n]}')
    with pytest.raises(DatasetError, match=r"x\.json:2: not valid JSON"):
        read_dataset(tmp_path, "coco")


def test_missing_images_unlisted_images_and_size_mismatch(tmp_path: Path) -> None:
    write_image(tmp_path / "images" / "a.jpg", 40, 30)
    write_image(tmp_path / "images" / "extra.jpg", 8, 8)
    images = [
        {"id": 1, "file_name": "a.jpg", "width": 80, "height": 60},
        {"id": 2, "file_name": "gone.jpg", "width": 8, "height": 8},
    ]
    annotations = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
        {"id": 2, "image_id": 99, "category_id": 1, "bbox": [1, 1, 5, 5]},
    ]
    write_json(tmp_path / "ann.json", _coco(images, annotations))
    dataset = read_dataset(tmp_path, "coco")
    codes = sorted((i.code, i.severity) for i in dataset.issues if i.code != "remapped-categories")
    assert codes == [
        ("label-without-image", "warning"),
        ("label-without-image", "warning"),
        ("size-mismatch", "warning"),
        ("unlisted-image", "info"),
    ]
    assert (dataset.images[0].width, dataset.images[0].height) == (40, 30)  # the image wins


@pytest.mark.parametrize(
    ("annotation", "code"),
    [
        (_ann(category_id=2, bbox=[1, 1, 5, 5]), "unknown-class"),
        (_ann(bbox=[1, 1, 5]), "bad-annotation"),
        (_ann(bbox=[1, 1, 500, 5]), "out-of-range"),
        (_ann(segmentation=[[1, 1, 5, 1, 5]]), "odd-coordinates"),
        (_ann(segmentation={"size": [60, 80], "counts": "abc"}), "bad-annotation"),
    ],
)
def test_an_annotation_error_drops_the_annotation_and_keeps_the_image(
    tmp_path: Path, annotation: Any, code: str
) -> None:
    valid = _ann(id=7, bbox=[2, 2, 6, 6])
    result = read_dataset_with_details(_dataset(tmp_path, [annotation, valid]), "coco")
    (image,) = result.dataset.images
    np.testing.assert_allclose(image.boxes_xyxy, [[2, 2, 8, 8]])  # only the valid annotation
    assert result.excluded_images == []
    errors = [i for i in result.dataset.issues if i.severity == "error"]
    assert [i.code for i in errors] == [code]
    assert "annotation id 1 (image a.jpg)" in errors[0].message


def test_slightly_out_box_is_clipped_and_zero_box_dropped(tmp_path: Path) -> None:
    annotations = [
        _ann(bbox=[30, 20, 11.5, 10.4]),  # 1.5 px out: clipped with a warning
        _ann(id=2, bbox=[3, 3, 0, 4]),  # zero width: dropped
        _ann(id=3, bbox=[0, 0, 40.6, 30]),  # 0.6 px out: clipped silently
    ]
    dataset = read_dataset(_dataset(tmp_path, annotations), "coco")
    np.testing.assert_allclose(dataset.images[0].boxes_xyxy, [[30, 20, 40, 30], [0, 0, 40, 30]])
    codes = [i.code for i in dataset.issues if i.code != "remapped-categories"]
    assert codes == ["clipped", "degenerate"]


def test_reading_never_writes(tmp_path: Path) -> None:
    root = _dataset(tmp_path, [_ann(bbox=[2, 3, 10, 5])])
    before = snapshot(root)
    read_dataset(root, "coco")
    assert snapshot(root) == before
