"""`check_dataset`: read a dataset and verify its images, returning a report for `dfseg check`.

Checking is reading (which collects every label problem with file and line) plus image integrity:
PIL's `verify()` and a look at the end of JPEG/PNG files for a missing end marker (truncated
downloads). With `deep=True` every image is also fully decoded (slower). Nothing is ever written.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from pydantic import BaseModel, Field, computed_field

from dfseg.data.duplicates import DEFAULT_MIN_SIMILARITY, fingerprint_images, group_duplicates
from dfseg.data.formats.issues import IMAGE_ERROR_CODES, IssueLog
from dfseg.data.formats.result import ReadResult
from dfseg.data.object_sizes import ObjectSizeReport, object_size_report
from dfseg.data.reading import LabelFormat, read_dataset_with_details
from dfseg.structures import DataIssue, Dataset, ImageAnnotation
from dfseg.structures.annotations import Severity
from dfseg.structures.progress import ProgressCallback, ProgressEvent, report

CHECK_TASK = "check images"
HASH_TASK = "find duplicates"
_JPEG_END = b"\xff\xd9"
_PNG_END = b"IEND"
_TAIL_BYTES = 4096  # some writers pad after the end marker


class ClassStats(BaseModel):
    """One row of the per-class table (crowd regions not counted)."""

    class_id: int
    name: str
    images: int
    instances: int
    pixel_share: float | None = Field(
        None, description="Semantic datasets: the class's share of the labelled pixels."
    )


@dataclass(frozen=True)
class InputSize:
    """How training resizes images: (height, width), letterbox or stretch, and the number of
    queries (the most objects one image can yield)."""

    hw: tuple[int, int]
    keep_ratio: bool
    num_queries: int = 300


class DuplicateSet(BaseModel):
    """One group of copies: paths relative to the dataset root, whether the bytes are equal,
    the lowest thumbnail similarity linked, and (with an existing split) each path's split."""

    paths: list[str]
    exact: bool
    similarity: float
    splits: list[str] = []

    @property
    def leaks(self) -> bool:
        """The copies lie in more than one split."""
        return len({s for s in self.splits if s}) > 1


class CheckReport(BaseModel):
    """What `dfseg check` prints: counts, a per-class table and every issue.

    `images` counts every image found, `corrupt` the unreadable ones (left out), `backgrounds`
    usable images without objects. `label_errors` counts the errors in labels apart from corrupt
    images: each drops its row (object, annotation), the image keeps its other labels.
    """

    root: str
    format: str
    images: int
    usable: int
    backgrounds: int
    corrupt: int
    instances: int
    label_files: int
    warnings: int
    errors: int
    label_errors: int = 0
    classes: list[ClassStats]
    issues: list[DataIssue]
    duplicates: list[DuplicateSet] = []
    sizes: ObjectSizeReport | None = None
    leaks: int = Field(0, description="Duplicate groups whose copies lie in different splits.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """True when no error was found (warnings were fixed on the fly)."""
        return self.errors == 0

    def summary(self) -> str:
        """One line in Ultralytics' style: `85 images, 1 backgrounds, 0 corrupt`."""
        return (
            f"{self.images} images, {self.backgrounds} backgrounds, {self.corrupt} corrupt, "
            f"{self.instances} instances, {self.label_errors} label errors (rows dropped), "
            f"{self.warnings} warnings"
        )


def check_dataset(
    root: Path,
    format: LabelFormat,
    class_names: list[str] | None = None,
    annotations: Path | None = None,
    deep: bool = False,
    progress: ProgressCallback | None = None,
) -> CheckReport:
    """Read the dataset, verify every image, and report.

    Args:
        root, format, class_names, annotations: as for `read_dataset`.
        deep: also decode every image fully (finds corrupt pixel data; slower).
        progress: optional callback receiving `ProgressEvent`s (reading, then checking).

    Returns:
        The report; `report.ok` is False when any error was found.

    Raises:
        DatasetError: the dataset cannot be read at all.
    """
    result = read_dataset_with_details(root, format, class_names, annotations, progress)
    return check_read(result, deep, progress)


def check_read(
    result: ReadResult,
    deep: bool = False,
    progress: ProgressCallback | None = None,
    duplicate_similarity: float | None = DEFAULT_MIN_SIMILARITY,
    splits: Mapping[Path, str] | None = None,
    input_size: InputSize | None = None,
    semantic: bool = False,
) -> CheckReport:
    """`check_dataset` of a dataset already read (e.g. a project's, split across folders).

    Args:
        result: the dataset as read.
        deep: fully decode every image.
        progress: receives reading, checking and hashing events.
        duplicate_similarity: lowest thumbnail correlation of near-duplicates (see
            `dfseg.data.duplicates`; None: no duplicate search).
        splits: image path -> split name of an existing split: duplicate groups across splits
            are reported as leaks.
        input_size: how training resizes images: object sizes are then reported at that size.
        semantic: the labels are class regions (`dfseg.data.semantic`): the class table gets
            each class's share of the labelled pixels, and object sizes are not reported.
    """
    dataset = result.dataset
    log = IssueLog(dataset.root)
    broken = _check_images(dataset.images, log, deep, progress)
    usable = [image for image in dataset.images if image.image_path not in broken]
    duplicates = []
    if duplicate_similarity is not None:
        paths = [image.image_path for image in usable]
        duplicates = _duplicates(paths, duplicate_similarity, log, splits or {}, progress)
    found = len(dataset.images) + len(result.excluded_images)
    if found == 0:
        log.add("no-images", dataset.root, "the dataset has no images")
    usable_dataset = Dataset(dataset.root, dataset.format, dataset.class_names, usable)
    classes = class_table(usable_dataset)
    if semantic:
        _add_pixel_shares(classes, usable_dataset)
    sizes = None
    if input_size is not None and not semantic:
        sizes = object_size_report(
            usable_dataset, input_size.hw, input_size.keep_ratio, input_size.num_queries
        )
    for row in classes:
        if row.instances == 0:
            log.add(
                "empty-class",
                dataset.root,
                f"class {row.name!r} (id {row.class_id}) has no instances",
            )
    issues = [*dataset.issues, *log.issues]
    errors = [issue for issue in issues if issue.severity == "error"]
    return CheckReport(
        root=str(dataset.root),
        format=dataset.format,
        images=found,
        usable=len(usable),
        backgrounds=sum(image.is_background for image in usable),
        corrupt=len(result.excluded_images) + len(broken),
        instances=int(sum((~image.iscrowd).sum() for image in usable)),
        label_files=result.label_files,
        warnings=sum(issue.severity == "warning" for issue in issues),
        errors=len(errors),
        label_errors=sum(issue.code not in IMAGE_ERROR_CODES for issue in errors),
        classes=classes,
        issues=issues,
        duplicates=duplicates,
        sizes=sizes,
        leaks=sum(group.leaks for group in duplicates),
    )


def _duplicates(
    paths: list[Path],
    min_similarity: float,
    log: IssueLog,
    splits: Mapping[Path, str],
    progress: ProgressCallback | None,
) -> list[DuplicateSet]:
    """Duplicate groups of the usable images, each logged (and logged again when it leaks)."""

    def hashed(done: int, total: int) -> None:
        report(progress, ProgressEvent(HASH_TASK, completed=done, total=total))

    found_prints = fingerprint_images(paths, hashed if progress else None)
    groups = group_duplicates(found_prints, min_similarity)
    found = []
    for group in groups:
        members = [paths[i] for i in group.indices]
        entry = DuplicateSet(
            paths=[log.relative(path) for path in members], exact=group.exact,
            similarity=group.similarity, splits=[splits.get(path, "") for path in members],
        )  # fmt: skip
        others = ", ".join(entry.paths[1:])
        kind = "duplicate-images" if group.exact else "near-duplicate-images"
        what = "same bytes as" if group.exact else f"near copy (similarity {group.similarity}) of"
        log.add(kind, members[0], f"{what} {others}")
        if entry.leaks:
            where = ", ".join(
                f"{p} ({s or 'no split'})" for p, s in zip(entry.paths, entry.splits, strict=True)
            )
            log.add("split-leak", members[0], f"copies in different splits: {where}")
        found.append(entry)
    return found


def class_table(dataset: Dataset) -> list[ClassStats]:
    """Images containing each class and instances per class (crowd regions not counted)."""
    num_classes = dataset.num_classes
    images = np.zeros(num_classes, dtype=np.int64)
    for image in dataset.images:
        present = np.unique(image.labels[~image.iscrowd])
        images[present[present < num_classes]] += 1
    instances = dataset.instance_counts()
    return [
        ClassStats(class_id=k, name=name, images=int(images[k]), instances=int(instances[k]))
        for k, name in enumerate(dataset.class_names)
    ]


def _add_pixel_shares(classes: list[ClassStats], dataset: Dataset) -> None:
    from dfseg.data.semantic import class_pixel_counts

    counts = class_pixel_counts(dataset)
    total = max(int(counts.sum()), 1)
    for row in classes:
        row.pixel_share = float(counts[row.class_id]) / total


def _check_images(
    images: Sequence[ImageAnnotation], log: IssueLog, deep: bool, progress: ProgressCallback | None
) -> set[Path]:
    """Integrity of every image (threads: file reads and decoding release the GIL)."""
    workers = max(1, min(8, os.cpu_count() or 1))
    broken: set[Path] = set()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = pool.map(lambda image: _check_one(image.image_path, deep), images)
        for done, (image, outcome) in enumerate(zip(images, outcomes, strict=True), start=1):
            for code, message, severity in outcome:
                issue = log.add(code, image.image_path, message, severity=severity)
                if issue.severity == "error":
                    broken.add(image.image_path)
            if progress is not None and (done % 16 == 0 or done == len(images)):
                report(progress, ProgressEvent(CHECK_TASK, completed=done, total=len(images)))
    return broken


def _check_one(path: Path, deep: bool) -> list[tuple[str, str, Severity | None]]:
    """(issue code, message, severity override) for one image file; empty when it is fine.

    A truncated JPEG still decodes (the rest is grey), so it is a warning; a truncated PNG fails
    PIL's verify and OpenCV returns nothing for it, so it is an error.
    """
    truncated = None
    try:
        with Image.open(path) as image:
            truncated = _missing_end_marker(path, image.format or "")
            image.verify()
        if deep and not truncated:
            with Image.open(path) as image:
                image.load()
    except Exception as error:  # PIL raises many types for bad data
        if truncated:
            return [("truncated-image", f"{truncated}; cannot be decoded: {error}", "error")]
        return [("unreadable-image", f"image data is corrupt: {error}", None)]
    return [("truncated-image", truncated, None)] if truncated else []


def _missing_end_marker(path: Path, image_format: str) -> str | None:
    """A message when a JPEG/PNG file ends without its end marker (a truncated file)."""
    marker = {"JPEG": _JPEG_END, "MPO": _JPEG_END, "PNG": _PNG_END}.get(image_format)
    if marker is None:
        return None
    with path.open("rb") as file:
        file.seek(0, os.SEEK_END)
        size = file.tell()
        file.seek(max(0, size - _TAIL_BYTES))
        tail = file.read()
    if marker in tail:
        return None
    return f"{image_format} file ends without its end marker (truncated?)"
