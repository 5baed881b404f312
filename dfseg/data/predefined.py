"""A dataset's own splits: finding them, and reading a dataset split across folders or lists.

Exports from labelling tools often come split already, and a shipped test split must never leak
into training. Layouts recognised (names: train/training, val/valid/validation, test/testing):

- split folders that are datasets of the format themselves: Roboflow COCO (`train/` with
  `_annotations.coco.json`, `valid/`, `test/`), Roboflow YOLO (`train/images` + `train/labels`),
  VOC pairs (`train/Annotations` + `train/JPEGImages`) or XML beside the images;
- YOLO `images/train`, `images/val`, `images/test` (one dataset, images sorted by folder);
- VOC `ImageSets/Main/train.txt`, `val.txt`, `test.txt` (image ids, one per line);
- explicit sources given in the project (`data.split: {train: train/, val: valid/}`): folders as
  above, or list files naming images (paths relative to the dataset folder, or ids).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from dfseg.data.formats.classes import find_class_names
from dfseg.data.formats.issues import DatasetError, IssueLog
from dfseg.data.formats.result import ReadResult
from dfseg.data.reading import LabelFormat, read_dataset_with_details
from dfseg.structures import Dataset, ImageAnnotation
from dfseg.structures.progress import ProgressCallback

SPLIT_FOLDER_NAMES: dict[str, tuple[str, ...]] = {
    "train": ("train", "training"),
    "val": ("val", "valid", "validation"),
    "test": ("test", "testing"),
}
SourceKind = Literal["dataset", "subset"]


@dataclass(frozen=True)
class SplitSource:
    """Where one split's images come from.

    Attributes:
        split: "train", "val" or "test".
        path: the folder or list file.
        kind: "dataset": a folder readable as a dataset of the format on its own; "subset": a
            part of the dataset at the root (an image folder below it, or a list file).
    """

    split: str
    path: Path
    kind: SourceKind

    def describe(self, root: Path) -> str:
        try:
            shown = self.path.relative_to(root).as_posix()
        except ValueError:
            shown = str(self.path)
        return f"{shown}/" if self.path.is_dir() else shown


@dataclass
class SplitRead:
    """A dataset read from its split sources.

    Attributes:
        result: the merged dataset (root: the dataset folder) and what reading left out.
        by_split: split name -> its images.
        unassigned: images of the dataset that no source lists (left out of every split).
    """

    result: ReadResult
    by_split: dict[str, list[ImageAnnotation]]
    unassigned: list[Path] = field(default_factory=list)


def find_split_sources(root: Path, format: LabelFormat) -> dict[str, SplitSource]:
    """The dataset's own splits by the layouts in the module docstring ({} when none)."""
    if not root.is_dir():
        return {}
    found: dict[str, SplitSource] = {}
    for split, names in SPLIT_FOLDER_NAMES.items():
        for name in names:
            folder = root / name
            if folder.is_dir() and _is_dataset_folder(folder, format):
                found[split] = SplitSource(split, folder, "dataset")
                break
            subset = _subset_of(root, name, format)
            if subset is not None:
                found[split] = SplitSource(split, subset, "subset")
                break
    return found if "train" in found else {}


def _is_dataset_folder(folder: Path, format: LabelFormat) -> bool:
    if format == "coco":
        return any(folder.glob("*.json")) or any((folder / "annotations").glob("*.json"))
    if format == "yolo":
        return (folder / "images").is_dir() or (folder / "labels").is_dir()
    if format == "masks":
        return (folder / "images").is_dir() or (folder / "masks").is_dir()
    return any(folder.rglob("*.xml"))


def _subset_of(root: Path, name: str, format: LabelFormat) -> Path | None:
    if format in ("yolo", "masks") and (root / "images" / name).is_dir():
        return root / "images" / name
    if format == "masks":
        listed = root / "ImageSets" / "Segmentation" / f"{name}.txt"
        if listed.is_file():
            return listed
    if format == "voc":
        listed = root / "ImageSets" / "Main" / f"{name}.txt"
        if listed.is_file():
            return listed
    return None


def sources_from_config(
    root: Path, named: dict[str, str], format: LabelFormat
) -> dict[str, SplitSource]:
    """The splits a project names (`data.split: {train: ..., val: ...}`), resolved.

    Raises:
        DatasetError: a named folder or file that does not exist.
    """
    sources = {}
    for split, value in named.items():
        path = Path(value).expanduser()
        path = path if path.is_absolute() else root / path
        if path.is_file():
            sources[split] = SplitSource(split, path, "subset")
        elif path.is_dir():
            kind: SourceKind = "dataset" if _is_dataset_folder(path, format) else "subset"
            sources[split] = SplitSource(split, path, kind)
        else:
            raise DatasetError(
                f"data.split.{split}: {path} is neither a folder nor a list file (paths are "
                f"relative to the dataset folder {root})"
            )
    return sources


def read_split_sources(
    root: Path,
    format: LabelFormat,
    class_names: list[str] | None,
    annotations: Path | None,
    sources: dict[str, SplitSource],
    progress: ProgressCallback | None = None,
) -> SplitRead:
    """Read a dataset from its split sources into one dataset rooted at `root`.

    Folders that are datasets are read one by one (their class lists must agree; COCO
    categories are matched by name to the first folder's); subsets are cut out of the dataset
    at `root`.

    Raises:
        DatasetError: a source cannot be read, classes that differ between folders, or an image
            listed in two splits.
    """
    if class_names is None and format == "yolo":  # Roboflow YOLO: data.yaml at the root
        found = find_class_names(root)
        class_names = found[0] if found is not None else None
    merged = ReadResult(Dataset(root, format, list(class_names or []), []))
    by_split: dict[str, list[ImageAnnotation]] = {}
    whole: ReadResult | None = None
    for split, source in sources.items():
        if source.kind == "dataset":
            part = read_dataset_with_details(
                source.path, format, merged.dataset.class_names or class_names, None, progress
            )
            _absorb(merged, part, source, root)
            by_split[split] = part.dataset.images
        else:
            if whole is None:
                whole = read_dataset_with_details(root, format, class_names, annotations, progress)
                _absorb(merged, whole, source, root)
            by_split[split] = _subset(whole.dataset, source)
    _refuse_overlaps(by_split, root)
    merged.dataset.images = sorted(
        (image for images in by_split.values() for image in images),
        key=lambda image: str(image.image_path),
    )
    unassigned = []
    if whole is not None:
        assigned = {image.image_path for image in merged.dataset.images}
        unassigned = [i.image_path for i in whole.dataset.images if i.image_path not in assigned]
    if unassigned:
        log = IssueLog(root)
        log.add(
            "unassigned-images", root,
            f"{len(unassigned)} images are in no split (e.g. {log.relative(unassigned[0])})",
        )  # fmt: skip
        merged.dataset.issues += log.issues
    return SplitRead(merged, by_split, unassigned)


def _absorb(merged: ReadResult, part: ReadResult, source: SplitSource, root: Path) -> None:
    """Add what reading `part` left out to `merged` and check its classes agree."""
    merged.excluded_images += part.excluded_images
    merged.label_files += part.label_files
    merged.dataset.issues += part.dataset.issues
    names = part.dataset.class_names
    if not merged.dataset.class_names:
        merged.dataset.class_names = list(names)
        merged.dataset.source_class_ids = part.dataset.source_class_ids
    elif names != merged.dataset.class_names:
        raise DatasetError(
            f"{source.describe(root)} has the classes {names} but the other splits have "
            f"{merged.dataset.class_names}; give data.classes in the project file so every split "
            "is read with the same class ids"
        )


def _subset(dataset: Dataset, source: SplitSource) -> list[ImageAnnotation]:
    """The images of `dataset` inside the folder `source.path`, or listed in the list file."""
    if source.path.is_dir():
        folder = source.path.resolve()
        return [i for i in dataset.images if folder in i.image_path.resolve().parents]
    entries = [line.strip() for line in source.path.read_text("utf-8").splitlines()]
    wanted = {entry for entry in entries if entry and not entry.startswith("#")}
    chosen = []
    for image in dataset.images:
        relative = image.image_path.resolve().relative_to(dataset.root.resolve()).as_posix()
        if relative in wanted or image.image_path.stem in wanted or image.image_path.name in wanted:
            chosen.append(image)
    return chosen


def _refuse_overlaps(by_split: dict[str, list[ImageAnnotation]], root: Path) -> None:
    seen: dict[Path, str] = {}
    for split, images in by_split.items():
        for image in images:
            earlier = seen.setdefault(image.image_path.resolve(), split)
            if earlier != split:
                raise DatasetError(
                    f"{image.image_path} is in both the {earlier} and the {split} split; a "
                    "split's images must not appear in another"
                )
