"""What every format reader returns, and the progress reporting they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dfseg.structures import Dataset
from dfseg.structures.progress import ProgressCallback, ProgressEvent, report

READ_TASK = "read labels"
_PROGRESS_EVERY = 16


@dataclass
class ReadResult:
    """A dataset plus what reading left out.

    Attributes:
        dataset: the usable images (with `dataset.issues` filled).
        excluded_images: images left out because they cannot be read (a bad label row drops
            only that row).
        label_files: label files read (YOLO/VOC: one per labelled image; COCO: the JSON).
    """

    dataset: Dataset
    excluded_images: list[Path] = field(default_factory=list)
    label_files: int = 0


def report_read_progress(progress: ProgressCallback | None, done: int, total: int) -> None:
    """A progress event every few images and at the end (cheap for thousands of images)."""
    if progress is not None and (done % _PROGRESS_EVERY == 0 or done == total):
        report(progress, ProgressEvent(task=READ_TASK, completed=done, total=total))
