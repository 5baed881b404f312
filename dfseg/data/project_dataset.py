"""A project's dataset as every command reads it: the `data:` section's folder and format, and
its split, whether by ratios or by the dataset's own split folders / lists.

    project_dataset = read_project_dataset(config.data)
    report = make_split(project_dataset, config.data.split, config.split_dir)

A dataset that comes split (see `dfseg.data.predefined`) is used as it is split. When the project
gives ratios instead, the split is refused with a message saying how to use the dataset's own
splits, unless `data.split.merge_predefined: true` asks to mix them into one random split: a
shipped test split never leaks into training by accident.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from dfseg.config import DataSection
from dfseg.config.project import SplitSection
from dfseg.config.tasks import Task, task_spec
from dfseg.data.duplicates import fingerprint_images, group_duplicates
from dfseg.data.formats.issues import indented_list, relative_to_root
from dfseg.data.formats.result import ReadResult
from dfseg.data.predefined import (
    SplitSource,
    find_split_sources,
    read_split_sources,
    sources_from_config,
)
from dfseg.data.reading import read_dataset_with_details
from dfseg.data.semantic import semantic_from_instances
from dfseg.data.split import SplitError, SplitReport, split_dataset, write_predefined_split
from dfseg.structures import Dataset, ImageAnnotation
from dfseg.structures.progress import ProgressCallback


@dataclass
class ProjectDataset:
    """The project's dataset and how it is split.

    Attributes:
        result: the dataset (every split's images) and what reading left out.
        predefined: split name -> images, when the dataset's own splits are used.
        sources: where the dataset's own splits are (found or named), {} when it has none.
        conflict: why a random split is refused (the dataset comes split but ratios are given),
            None when there is no conflict. `make_split` raises it; `dfseg check` shows it.
        notes: facts to show (which splits are used).
        unassigned: images of the dataset that no split source holds (in no split).
    """

    result: ReadResult
    predefined: dict[str, list[ImageAnnotation]] | None = None
    sources: dict[str, SplitSource] = field(default_factory=dict)
    conflict: str | None = None
    notes: list[str] = field(default_factory=list)
    unassigned: list[Path] = field(default_factory=list)

    @property
    def dataset(self) -> Dataset:
        return self.result.dataset


def dataset_root(data: DataSection) -> Path:
    """The dataset folder (the folder of a COCO JSON file given as `data.path`)."""
    return data.path if data.path.is_dir() or not data.path.exists() else data.path.parent


def read_project_dataset(
    data: DataSection, progress: ProgressCallback | None = None, task: Task = "detect"
) -> ProjectDataset:
    """Read the project's dataset (see the module docstring).

    Args:
        data: the project's data section.
        progress: optional callback receiving `ProgressEvent`s.
        task: the project's task; for a semantic task, instance labels (polygons, masks) are
            turned into class regions with a background class first (`semantic_from_instances`);
            `masks` datasets are read as class regions already.

    Raises:
        DatasetError: the dataset or one of its splits cannot be read.
    """
    project = _read_project_dataset(data, progress)
    if task_spec(task).semantic and data.format != "masks":
        project = _as_semantic(project)
    return project


def _as_semantic(project: ProjectDataset) -> ProjectDataset:
    """The project's instance labels as class regions (the split lists follow the images)."""
    dataset = semantic_from_instances(project.dataset)
    by_path = {image.image_path: image for image in dataset.images}
    predefined = None
    if project.predefined is not None:
        predefined = {
            name: [by_path[image.image_path] for image in images]
            for name, images in project.predefined.items()
        }
    result = replace(project.result, dataset=dataset)
    return replace(project, result=result, predefined=predefined)


def _read_project_dataset(data: DataSection, progress: ProgressCallback | None) -> ProjectDataset:
    root = dataset_root(data)
    classes = data.class_names or None
    split = data.split
    if split.sources is not None:
        sources = sources_from_config(root, split.sources, data.format)
        read = read_split_sources(root, data.format, classes, data.annotations, sources, progress)
        notes = [f"using the splits in data.split: {_described(read.by_split, sources, root)}"]
        return ProjectDataset(
            read.result, read.by_split, sources, notes=notes, unassigned=read.unassigned
        )
    found = {}
    if data.annotations is None and data.path.is_dir():
        found = find_split_sources(root, data.format)
    if not found:
        result = read_dataset_with_details(
            data.path, data.format, classes, data.annotations, progress
        )
        return ProjectDataset(result)
    read = read_split_sources(root, data.format, classes, None, found, progress)
    described = _described(read.by_split, found, root)
    if split.merge_predefined:
        note = f"the dataset's own splits ({described}) are mixed into one random split"
        return ProjectDataset(read.result, None, found, notes=[note])
    if split.ratios_given:
        as_yaml = ", ".join(f"{name}: {s.describe(root).rstrip('/')}" for name, s in found.items())
        conflict = (
            f"{root} comes split already: {described}. data.split gives ratios, which would mix "
            f"them into a random split (the shipped test images could end up in training). Use "
            f"the dataset's splits with `split: {{{as_yaml}}}` in the data section, or set "
            "data.split.merge_predefined: true to re-split all images by the ratios."
        )
        return ProjectDataset(read.result, None, found, conflict=conflict)
    note = f"using the dataset's own splits: {described}"
    return ProjectDataset(
        read.result, read.by_split, found, notes=[note], unassigned=read.unassigned
    )


def make_split(
    project: ProjectDataset,
    split: SplitSection,
    out_dir: Path,
    overwrite: bool = False,
    skip_invalid: bool = False,
) -> SplitReport:
    """Write the split lists: the dataset's own splits, or a seeded stratified random split.

    Images reading left out (unreadable) or that no split folder holds are in no split; they
    are listed in the report's `skipped`, and without `skip_invalid` nothing is written then.

    Raises:
        SplitError: the dataset comes split but ratios are given (`ProjectDataset.conflict`),
            images left out without `skip_invalid` (all listed), split files in the way
            (without `overwrite`), bad ratios.
    """
    if project.conflict is not None:
        raise SplitError(project.conflict)
    skipped = skipped_images(project)
    if skipped and not skip_invalid:
        raise SplitError(
            f"{len(skipped)} image(s) of the dataset would be in no split; nothing was written. "
            f"Fix them (see `dfseg check`), or pass --skip-invalid to split without them:\n"
            f"{indented_list(skipped)}"
        )
    report = _write_split(project, split, out_dir, overwrite)
    report.skipped = skipped
    return report


def skipped_images(project: ProjectDataset) -> list[str]:
    """ "path: reason" of every image found that no split will hold."""
    root = project.dataset.root
    unreadable = {
        issue.path: issue.message
        for issue in project.dataset.issues
        if issue.code in ("unreadable-image", "empty-image")
    }
    lines = [
        f"{path}: {unreadable.get(relative_to_root(path, root), 'unreadable')}"
        for path in project.result.excluded_images
    ]
    return lines + [f"{path}: in no split folder or list" for path in project.unassigned]


def _write_split(
    project: ProjectDataset, split: SplitSection, out_dir: Path, overwrite: bool
) -> SplitReport:
    if project.predefined is not None:
        root = project.dataset.root
        sources = {name: source.describe(root) for name, source in project.sources.items()}
        return write_predefined_split(
            project.dataset, project.predefined, out_dir, sources, split.ignore_negatives,
            overwrite,
        )  # fmt: skip
    duplicates = []
    if split.duplicate_similarity is not None:
        paths = [image.image_path for image in project.dataset.images]
        groups = group_duplicates(fingerprint_images(paths), split.duplicate_similarity)
        duplicates = [[paths[i] for i in group.indices] for group in groups]
    report = split_dataset(
        project.dataset, out_dir, ratios=split.ratios, seed=split.seed,
        ignore_negatives=split.ignore_negatives, overwrite=overwrite, duplicates=duplicates,
    )  # fmt: skip
    report.notes = [*project.notes, *report.notes]
    return report


def _described(
    by_split: dict[str, list[ImageAnnotation]], sources: dict[str, SplitSource], root: Path
) -> str:
    return ", ".join(
        f"{name} = {source.describe(root)} ({len(by_split.get(name, []))} images)"
        for name, source in sources.items()
    )
