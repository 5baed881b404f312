"""The three real datasets in ../shared/data load, with their known quirks reported.

Expected counts are taken from the raw files with independent, simple parsing (line counts, XML
object counts, the JSON annotation list), not from the readers under test.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dfseg.data.reading import read_dataset, read_dataset_with_details
from dfseg.ops.masks import segment_to_mask

pytestmark = pytest.mark.shared


def test_potholes_yolo_seg(shared_data_dir: Path) -> None:
    root = shared_data_dir / "potholes-yolo-seg"
    result = read_dataset_with_details(root, "yolo")
    dataset = result.dataset
    images = sorted((root / "images").iterdir())
    rows = sum(
        len([line for line in p.read_text().splitlines() if line.strip()])
        for p in (root / "labels").glob("*.txt")
    )
    assert len(dataset.images) == len(images) and result.excluded_images == []
    assert dataset.class_names == ["pothole"]
    assert int(dataset.instance_counts().sum()) == rows
    assert all(segment is not None for image in dataset.images for segment in image.segments)
    # quirk: one image has no label file -> background, reported as info
    missing = [i for i in dataset.issues if i.code == "missing-label"]
    unlabelled = [p for p in images if not (root / "labels" / f"{p.stem}.txt").exists()]
    assert [i.path for i in missing] == [f"images/{p.name}" for p in unlabelled]
    assert len(unlabelled) == 1 and missing[0].severity == "info"
    # the held-out test/ folder (COCO) is not mixed into the YOLO images
    assert any(i.code == "unlisted-image" and "test/" in i.message for i in dataset.issues)
    assert not [i for i in dataset.issues if i.severity == "error"]
    # polygons rasterise inside their boxes
    image = next(image for image in dataset.images if image.num_instances)
    mask = segment_to_mask(image.segments[0], image.height, image.width)
    x1, y1, x2, y2 = image.boxes_xyxy[0]
    assert mask.sum() > 0 and not mask[:, : int(x1)].any() and not mask[: int(y1)].any()
    assert not mask[:, int(np.ceil(x2)) :].any() and not mask[int(np.ceil(y2)) :].any()


def test_potholes_test_split_coco(shared_data_dir: Path) -> None:
    root = shared_data_dir / "potholes-yolo-seg" / "test"
    content = json.loads((root / "_annotations.coco.json").read_text())
    dataset = read_dataset(root, "coco", ["pothole"])
    assert len(dataset.images) == len(content["images"])
    assert int(dataset.instance_counts().sum()) == len(content["annotations"])
    assert dataset.source_class_ids == [0]


def test_kangaroo_voc(shared_data_dir: Path) -> None:
    root = shared_data_dir / "kangaroo-voc"
    result = read_dataset_with_details(root, "voc", ["kangaroo"])
    dataset = result.dataset
    xml_files = sorted((root / "annots").glob("*.xml"))
    objects = sum(len(ET.parse(p).getroot().findall("object")) for p in xml_files)
    assert len(dataset.images) == len(xml_files) and result.excluded_images == []
    assert int(dataset.instance_counts().sum()) == objects
    assert not [i for i in dataset.issues if i.severity == "error"]
    # sizes come from the images, and every disagreeing XML size is reported
    mismatched = set()
    for xml_path in xml_files:
        tree = ET.parse(xml_path).getroot()
        stated = (int(tree.findtext("size/width")), int(tree.findtext("size/height")))
        if stated != Image.open(root / "images" / tree.findtext("filename")).size:
            mismatched.add(f"annots/{xml_path.name}")
    reported = {i.path for i in dataset.issues if i.code == "size-mismatch"}
    assert reported == mismatched
    for image in dataset.images:
        assert (image.width, image.height) == Image.open(image.image_path).size
        assert (image.boxes_xyxy[:, 2] <= image.width).all()


def test_fruits_nuts_coco(shared_data_dir: Path) -> None:
    root = shared_data_dir / "fruits-nuts-coco"
    content = json.loads((root / "trainval.json").read_text())
    dataset = read_dataset(root, "coco")
    assert dataset.class_names == [
        c["name"] for c in sorted(content["categories"], key=lambda c: c["id"])
    ]
    assert dataset.source_class_ids == [1, 2, 3]  # quirk: ids start at 1 -> mapped to 0..2
    assert any(i.code == "remapped-categories" for i in dataset.issues)
    assert len(dataset.images) == len(content["images"])
    assert all((image.width, image.height) == (800, 600) for image in dataset.images)
    per_class = np.bincount([a["category_id"] - 1 for a in content["annotations"]], minlength=3)
    np.testing.assert_array_equal(dataset.instance_counts(), per_class)
    assert not [i for i in dataset.issues if i.severity == "error"]
