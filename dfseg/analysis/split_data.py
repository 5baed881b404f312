"""The images and ground truth of one split of a project's dataset, for the analysis commands."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dfseg.analysis.exceptions import AnalysisError
from dfseg.data.reading import LabelFormat, read_dataset
from dfseg.data.split import load_split
from dfseg.metrics import ImageGroundTruth
from dfseg.structures import ImageAnnotation

SplitChoice = Literal["auto", "train", "val", "test"]


@dataclass
class SplitImages:
    """One split, ready to evaluate.

    Attributes:
        name: "train", "val" or "test".
        annotations: per image, as read from the labels.
        ground_truths: per image, for the metrics (box-only for a detection task).
        class_names: id -> name.
    """

    name: str
    annotations: list[ImageAnnotation]
    ground_truths: list[ImageGroundTruth]
    class_names: list[str]

    @property
    def image_paths(self) -> list[Path]:
        return [a.image_path for a in self.annotations]


def load_split_images(
    dataset_root: Path,
    label_format: LabelFormat,
    class_names: list[str] | None,
    split_dir: Path,
    split: SplitChoice,
    task: Literal["detect", "segment"],
    annotations_file: Path | None = None,
    max_images: int | None = None,
) -> SplitImages:
    """Read the dataset and pick one split's images.

    Args:
        dataset_root: the dataset folder; label_format: "yolo", "coco" or "voc".
        class_names: id -> name (None: from the dataset).
        split_dir: the folder of `train.csv`, `val.csv`, `test.csv` (made by `dfseg split`).
        split: a split name, or "auto": test when it has images, else val.
        task: "detect" evaluates boxes only, even when the labels carry outlines.
        annotations_file: COCO only, the JSON file.
        max_images: keep the first this many (None: all).

    Raises:
        AnalysisError: the chosen split has no images.
    """
    dataset = read_dataset(dataset_root, label_format, class_names, annotations_file)
    splits = load_split(split_dir, dataset)
    name = split
    if split == "auto":
        name = "test" if splits.get("test") else "val"
    annotations = list(splits.get(name, []))[:max_images]
    if not annotations:
        raise AnalysisError(
            f"the {name} split in {split_dir} has no images; choose another split or re-run "
            "`dfseg split` with a non-zero ratio for it"
        )
    ground_truths = [ImageGroundTruth.from_annotation(a) for a in annotations]
    if task == "detect":
        ground_truths = [_boxes_only(gt) for gt in ground_truths]
    return SplitImages(name, annotations, ground_truths, dataset.class_names)


def _boxes_only(ground_truth: ImageGroundTruth) -> ImageGroundTruth:
    return ImageGroundTruth(
        boxes_xyxy=ground_truth.boxes_xyxy,
        labels=ground_truth.labels,
        iscrowd=ground_truth.iscrowd,
        areas=ground_truth.resolved_areas,  # COCO's area ranges keep using the outline's area
        image_size=ground_truth.image_size,
        where=ground_truth.where,
    )
