"""The project's dataset and its train/val/test lists, as training and validation use them."""

from __future__ import annotations

from dataclasses import dataclass

from dfseg.config import ProjectConfig
from dfseg.data.project_dataset import make_split, read_project_dataset
from dfseg.data.split import SPLIT_INFO_FILE, SplitReport, load_split
from dfseg.errors import DfsegError
from dfseg.structures import Dataset, ImageAnnotation


class ProjectDataError(DfsegError):
    """The dataset or its split cannot be used for training."""


@dataclass
class ProjectData:
    """A read dataset and its splits.

    Attributes:
        dataset: the whole dataset in the internal form.
        splits: "train", "val", "test" -> images (a split may be empty).
        created_split: the report when the split was made now (no split lists existed).
    """

    dataset: Dataset
    splits: dict[str, list[ImageAnnotation]]
    created_split: SplitReport | None = None

    @property
    def class_names(self) -> list[str]:
        return self.dataset.class_names

    def eval_split(self, preferred: str = "val") -> tuple[str, list[ImageAnnotation]]:
        """The split to evaluate on: `preferred` when it has images, else the other one."""
        fallback = "test" if preferred == "val" else "val"
        for name in (preferred, fallback):
            if self.splits.get(name):
                return name, self.splits[name]
        raise ProjectDataError(
            "no validation or test images: set data.split.val > 0 and run `dfseg split` again"
        )


def load_project_data(config: ProjectConfig, create_split: bool = True) -> ProjectData:
    """Read the dataset and its split lists; make the split first when there is none.

    Args:
        config: the project.
        create_split: write the split (the dataset's own splits, or the project's ratios and
            seed) when missing; when False a missing split is an error.

    Raises:
        ProjectDataError: no classes, no split (and `create_split` False), or an empty train split.
        SplitError: ratios given for a dataset that comes split (see `read_project_dataset`).
    """
    project = read_project_dataset(config.data, task=config.project.task)
    dataset = project.dataset
    if dataset.num_classes == 0:
        raise ProjectDataError(
            f"{config.data.path}: no class names; list them in data.classes of the project file"
        )
    created = None
    split_dir = config.split_dir
    if not (split_dir / SPLIT_INFO_FILE).exists():
        if not create_split:
            raise ProjectDataError(f"no split in {split_dir}; run `dfseg split` first")
        # the run goes on without unreadable images; the report lists them (`skipped`)
        created = make_split(project, config.data.split, split_dir, skip_invalid=True)
    splits = load_split(split_dir, dataset)
    if not splits.get("train"):
        raise ProjectDataError(f"{split_dir}: the train split is empty")
    return ProjectData(dataset=dataset, splits=splits, created_split=created)
