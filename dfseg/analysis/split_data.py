"""The images and ground truth of one split of a project's dataset, for the analysis commands."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dfseg.analysis.exceptions import AnalysisError
from dfseg.config import ProjectConfig
from dfseg.config.tasks import Task, task_spec
from dfseg.data.project_dataset import read_project_dataset
from dfseg.data.split import load_split
from dfseg.metrics import ImageGroundTruth
from dfseg.structures import Dataset, ImageAnnotation

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
    dataset: Dataset,
    split_dir: Path,
    split: SplitChoice,
    task: Task,
    max_images: int | None = None,
) -> SplitImages:
    """Pick one split's images of a read dataset.

    Args:
        dataset: the dataset (as `dfseg.data.project_dataset.read_project_dataset` reads it).
        split_dir: the folder of `train.csv`, `val.csv`, `test.csv` (made by `dfseg split`).
        split: a split name, or "auto": test when it has images, else val.
        task: a task without instance masks ("detect") evaluates boxes only, even when the
            labels carry outlines.
        max_images: keep the first this many (None: all).

    Raises:
        AnalysisError: the chosen split has no images.
    """
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
    if not task_spec(task).instance_masks:
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


def split_images_for(
    project: ProjectConfig, split: SplitChoice, max_images: int | None = None
) -> SplitImages:
    """One split of a project's dataset, read as every command reads it."""
    dataset = read_project_dataset(project.data, task=project.project.task).dataset
    return load_split_images(dataset, project.split_dir, split, project.project.task, max_images)
