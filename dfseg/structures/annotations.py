"""The one internal annotation form every label format (YOLO, COCO, VOC) is read into.

Coordinates are absolute pixels of the image as stored on disk (width/height read from the image
itself, never trusted from the label file). Class ids are contiguous and 0-based; the dataset keeps
the id -> name list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel


@dataclass(frozen=True)
class Polygons:
    """One instance's outline: closed rings, each [K, 2] float32 (x, y) pixels, K >= 3."""

    rings: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class RLE:
    """One instance's mask as COCO run-length encoding (column-major, as pycocotools writes it).

    `counts` is either the compressed string or the uncompressed list of run lengths.
    """

    counts: str | list[int]
    height: int
    width: int


Segment = Polygons | RLE


def _empty_boxes() -> np.ndarray:
    return np.zeros((0, 4), dtype=np.float32)


def _empty_labels() -> np.ndarray:
    return np.zeros((0,), dtype=np.int64)


def _empty_flags() -> np.ndarray:
    return np.zeros((0,), dtype=bool)


@dataclass
class ImageAnnotation:
    """All instances of one image.

    Attributes:
        image_path: absolute path of the image file (read in place, never copied).
        width, height: image size in pixels, read from the image.
        labels: [N] int64 contiguous 0-based class ids.
        boxes_xyxy: [N, 4] float32 absolute pixel xyxy, clipped to the image.
        segments: N entries, `Polygons`, `RLE`, or None for a box-only instance.
        iscrowd: [N] bool, COCO crowd regions (ignored by evaluation, not trained as instances).
        difficult: [N] bool, VOC `difficult` flag (kept for evaluation; trained by default).
        label_path: the label file this came from (None for backgrounds without a label file,
            or for COCO where all labels live in one JSON file).
    """

    image_path: Path
    width: int
    height: int
    labels: np.ndarray = field(default_factory=_empty_labels)
    boxes_xyxy: np.ndarray = field(default_factory=_empty_boxes)
    segments: list[Segment | None] = field(default_factory=list)
    iscrowd: np.ndarray = field(default_factory=_empty_flags)
    difficult: np.ndarray = field(default_factory=_empty_flags)
    label_path: Path | None = None

    def __post_init__(self) -> None:
        n = len(self.labels)
        if not self.segments and n:
            self.segments = [None] * n
        if len(self.iscrowd) != n:
            self.iscrowd = np.zeros((n,), dtype=bool)
        if len(self.difficult) != n:
            self.difficult = np.zeros((n,), dtype=bool)
        if self.boxes_xyxy.shape != (n, 4) or len(self.segments) != n:
            raise ValueError(
                f"{self.image_path}: {n} labels but boxes {self.boxes_xyxy.shape} and "
                f"{len(self.segments)} segments"
            )

    @property
    def num_instances(self) -> int:
        return len(self.labels)

    @property
    def is_background(self) -> bool:
        return self.num_instances == 0

    @property
    def has_segments(self) -> bool:
        return any(s is not None for s in self.segments)


Severity = Literal["error", "warning", "info"]


class DataIssue(BaseModel):
    """One problem found while reading or checking a dataset.

    `error`s make `dfseg check` fail (the sample cannot be used as labelled); `warning`s are fixed
    on the fly (duplicate rows dropped, coordinates clipped) and reported; `info` is for quirks
    that need no action (a background image without a label file).
    """

    severity: Severity
    code: str
    path: str
    line: int | None = None
    message: str
    hint: str | None = None

    def location(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else self.path


@dataclass
class Dataset:
    """A whole dataset in the internal form.

    Attributes:
        root: the dataset folder as given in the project file.
        format: the label format it was read from.
        class_names: contiguous id -> name.
        images: one entry per usable image (corrupt images are left out and reported in issues).
        issues: everything noticed while reading, in file order.
        source_class_ids: for COCO, the original category id of each contiguous id.
    """

    root: Path
    format: str
    class_names: list[str]
    images: list[ImageAnnotation]
    issues: list[DataIssue] = field(default_factory=list)
    source_class_ids: list[int] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def instance_counts(self) -> np.ndarray:
        """[C] number of (non-crowd) instances per class."""
        counts = np.zeros(self.num_classes, dtype=np.int64)
        for image in self.images:
            keep = ~image.iscrowd
            counts += np.bincount(image.labels[keep], minlength=self.num_classes)[
                : self.num_classes
            ]
        return counts
