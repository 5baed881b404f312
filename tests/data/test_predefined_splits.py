"""Datasets that come split: Roboflow COCO and YOLO exports, YOLO images/<split>, VOC ImageSets
and VOC split folders. Their splits are found and used as they are; ratios never mix a shipped
test split into training unless asked."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_builders import voc_xml, write_image, write_json, write_text

from dfseg.config import DataSection
from dfseg.data.formats.issues import DatasetError
from dfseg.data.predefined import find_split_sources
from dfseg.data.project_dataset import make_split, read_project_dataset
from dfseg.data.split import SplitError, load_split

ROBOFLOW_SPLITS = {"train": 4, "valid": 2, "test": 1}


def roboflow_coco(root: Path, splits: dict[str, int] = ROBOFLOW_SPLITS) -> Path:
    """train/ valid/ test/, each with its images and `_annotations.coco.json` (Roboflow's
    export; category 0 is Roboflow's umbrella category, unused)."""
    for split, count in splits.items():
        images, annotations = [], []
        for k in range(count):
            name = f"{split}_{k}.jpg"
            write_image(root / split / name, 40, 30, seed=k)
            images.append({"id": k, "file_name": name, "width": 40, "height": 30})
            annotations.append(
                {"id": k, "image_id": k, "category_id": 1 + k % 2, "bbox": [2, 2, 10, 8],
                 "area": 80, "iscrowd": 0}
            )  # fmt: skip
        write_json(
            root / split / "_annotations.coco.json",
            {
                "images": images,
                "annotations": annotations,
                "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
            },
        )
    return root


def yolo_by_folder(root: Path) -> Path:
    """images/train, images/val, labels/train, labels/val (one dataset sorted by folder)."""
    write_text(root / "classes.txt", "cat\ndog\n")
    for split, count in (("train", 3), ("val", 2)):
        for k in range(count):
            write_image(root / "images" / split / f"{k}.jpg", 32, 32, seed=k)
            write_text(root / "labels" / split / f"{k}.txt", f"{k % 2} 0.5 0.5 0.2 0.2\n")
    return root


def _pairs(folder: Path, names: list[str]) -> None:
    for k, name in enumerate(names):
        write_image(folder / "JPEGImages" / f"{name}.jpg", 32, 32, seed=k)
        objects = [{"name": "roo", "box": (2, 2, 10, 10)}]
        xml = voc_xml(f"{name}.jpg", (32, 32), objects)
        write_text(folder / "Annotations" / f"{name}.xml", xml)


def test_roboflow_coco_folders_are_found_and_used_when_no_ratios_are_given(tmp_path: Path) -> None:
    root = roboflow_coco(tmp_path / "data")
    found = find_split_sources(root, "coco")
    assert {split: s.path.name for split, s in found.items()} == {
        "train": "train",
        "val": "valid",
        "test": "test",
    }
    project = read_project_dataset(DataSection(path=root, format="coco"))
    assert project.conflict is None and len(project.dataset.images) == 7
    assert project.dataset.class_names == ["cat", "dog"]
    assert "using the dataset's own splits" in project.notes[0]
    report = make_split(project, DataSection(path=root, format="coco").split, tmp_path / "split")
    assert report.source == "predefined" and report.counts == {"train": 4, "val": 2, "test": 1}
    assert report.sources == {"train": "train/", "val": "valid/", "test": "test/"}
    splits = load_split(tmp_path / "split", project.dataset)
    assert {i.image_path.name for i in splits["test"]} == {"test_0.jpg"}
    assert all(i.image_path.parent.name == "valid" for i in splits["val"])


def test_ratios_given_are_refused_for_a_split_dataset_unless_mixing_is_asked(
    tmp_path: Path,
) -> None:
    root = roboflow_coco(tmp_path / "data")
    data = DataSection(path=root, format="coco", split={"train": 0.8, "val": 0.2})
    project = read_project_dataset(data)
    assert project.conflict is not None
    with pytest.raises(SplitError) as refused:
        make_split(project, data.split, tmp_path / "split")
    message = str(refused.value)
    assert "comes split already" in message and "test = test/ (1 images)" in message
    assert "split: {train: train, val: valid, test: test}" in message
    assert "merge_predefined" in message and not (tmp_path / "split").exists()
    mixed = DataSection(
        path=root, format="coco", split={"train": 0.8, "val": 0.2, "merge_predefined": True}
    )
    report = make_split(read_project_dataset(mixed), mixed.split, tmp_path / "mixed")
    assert report.source == "ratios" and sum(report.counts.values()) == 7
    assert report.counts["test"] == 0  # ratios decide now: the shipped test split is mixed in


def test_explicit_sources_folders_and_list_files(tmp_path: Path) -> None:
    root = roboflow_coco(tmp_path / "data")
    data = DataSection(path=root, format="coco", split={"train": "train", "val": "test"})
    report = make_split(read_project_dataset(data), data.split, tmp_path / "a")
    assert report.counts == {"train": 4, "val": 1, "test": 0}
    voc = tmp_path / "voc"
    _pairs(voc, ["a", "b", "c", "d"])
    write_text(voc / "lists" / "train.txt", "a\nb\n# a comment\nc\n")
    write_text(voc / "lists" / "val.txt", "JPEGImages/d.jpg\n")
    section = DataSection(
        path=voc, format="voc", classes=["roo"],
        split={"train": "lists/train.txt", "val": "lists/val.txt"},
    )  # fmt: skip
    listed = make_split(read_project_dataset(section), section.split, tmp_path / "b")
    assert listed.counts == {"train": 3, "val": 1, "test": 0}
    with pytest.raises(DatasetError, match="neither a folder nor a list file"):
        read_project_dataset(
            DataSection(path=root, format="coco", split={"train": "training", "val": "valid"})
        )


def test_yolo_image_subfolders_and_voc_imagesets(tmp_path: Path) -> None:
    yolo = yolo_by_folder(tmp_path / "yolo")
    data = DataSection(path=yolo, format="yolo")
    report = make_split(read_project_dataset(data), data.split, tmp_path / "y")
    assert report.counts == {"train": 3, "val": 2, "test": 0}
    voc = tmp_path / "voc"
    _pairs(voc, ["a", "b", "c"])
    write_text(voc / "ImageSets" / "Main" / "train.txt", "a\nb\n")
    write_text(voc / "ImageSets" / "Main" / "test.txt", "c\n")
    section = DataSection(path=voc, format="voc", classes=["roo"])
    report = make_split(read_project_dataset(section), section.split, tmp_path / "v")
    assert report.counts == {"train": 2, "val": 0, "test": 1}


def test_voc_split_folders_with_their_own_pairs(tmp_path: Path) -> None:
    root = tmp_path / "voc"
    _pairs(root / "train", ["a", "b", "c"])
    _pairs(root / "test", ["d"])
    section = DataSection(path=root, format="voc", classes=["roo"])
    report = make_split(read_project_dataset(section), section.split, tmp_path / "s")
    assert report.counts == {"train": 3, "val": 0, "test": 1}


def test_roboflow_yolo_export_with_data_yaml_at_the_root(tmp_path: Path) -> None:
    root = tmp_path / "export"
    write_text(root / "data.yaml", "names: [cat, dog]\nnc: 2\n")
    for split, count in (("train", 3), ("valid", 1)):
        for k in range(count):
            write_image(root / split / "images" / f"{k}.jpg", 32, 32, seed=k)
            write_text(root / split / "labels" / f"{k}.txt", "1 0.5 0.5 0.2 0.2\n")
    project = read_project_dataset(DataSection(path=root, format="yolo"))
    assert project.dataset.class_names == ["cat", "dog"]
    assert {k: len(v) for k, v in (project.predefined or {}).items()} == {"train": 3, "val": 1}


def test_images_in_no_split_are_listed_and_stop_the_split_unless_skipped(tmp_path: Path) -> None:
    voc = tmp_path / "voc"
    _pairs(voc, ["a", "b", "c"])
    write_text(voc / "ImageSets" / "Main" / "train.txt", "a\n")
    write_text(voc / "ImageSets" / "Main" / "val.txt", "b\n")
    section = DataSection(path=voc, format="voc", classes=["roo"])
    project = read_project_dataset(section)
    assert [i.code for i in project.dataset.issues if i.code == "unassigned-images"]
    with pytest.raises(SplitError, match=r"1 image\(s\) of the dataset would be in no split"):
        make_split(project, section.split, tmp_path / "s")
    report = make_split(project, section.split, tmp_path / "s", skip_invalid=True)
    assert len(report.skipped) == 1 and "c.jpg: in no split" in report.skipped[0]


def test_an_image_in_two_splits_is_refused(tmp_path: Path) -> None:
    voc = tmp_path / "voc"
    _pairs(voc, ["a", "b"])
    write_text(voc / "ImageSets" / "Main" / "train.txt", "a\nb\n")
    write_text(voc / "ImageSets" / "Main" / "val.txt", "b\n")
    with pytest.raises(DatasetError, match="in both the train and the val split"):
        read_project_dataset(DataSection(path=voc, format="voc", classes=["roo"]))


def test_a_split_section_is_ratios_or_sources_not_both() -> None:
    with pytest.raises(ValueError, match="not both"):
        DataSection(path=Path("."), split={"train": "train", "val": 0.2})
    section = DataSection(path=Path("."), split={"train": "train", "test": "test"})
    assert section.split.sources == {"train": "train", "test": "test"}
    assert not DataSection(path=Path(".")).split.ratios_given
    assert DataSection(path=Path("."), split={"train": 0.7, "val": 0.3}).split.ratios_given
