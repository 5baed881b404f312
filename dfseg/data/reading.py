"""`read_dataset`: the one entry point from a user's labels (YOLO, COCO, VOC, index masks) to a
`Dataset`.

Importers read the user's layout in place and never write to it. Everything noticed on the way is
in `Dataset.issues` (see `dfseg.data.formats.issues.ISSUE_KINDS`); images whose labels have errors
are left out of `Dataset.images`. Image sizes come from the image headers (EXIF-rotated, as
`cv2.imread` returns them), never from the labels.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from dfseg.data.formats.coco import read_coco
from dfseg.data.formats.issues import DatasetError, IssueLog
from dfseg.data.formats.masks import read_masks
from dfseg.data.formats.result import ReadResult
from dfseg.data.formats.voc import read_voc
from dfseg.data.formats.yolo import read_yolo
from dfseg.structures import Dataset
from dfseg.structures.progress import ProgressCallback

LabelFormat = Literal["yolo", "coco", "voc", "masks"]
Reader = Callable[[Path, list[str] | None, Path | None, ProgressCallback | None], ReadResult]

READERS: dict[str, Reader] = {
    "yolo": read_yolo,
    "coco": read_coco,
    "voc": read_voc,
    "masks": read_masks,
}


def read_dataset(
    root: Path,
    format: LabelFormat,
    class_names: list[str] | None = None,
    annotations: Path | None = None,
    progress: ProgressCallback | None = None,
) -> Dataset:
    """Read a dataset in any supported label format into the internal form.

    Args:
        root: the dataset folder (for COCO also the JSON file itself).
        format: "yolo", "coco", "voc" or "masks" (index PNGs for semantic segmentation).
        class_names: id -> name. YOLO: read from classes.txt / data.yaml when None. COCO:
            categories are matched by name when given. VOC: names map to ids by this list.
            masks: the name of each pixel value (classes.txt at the root when None).
        annotations: COCO only, the JSON file when the folder holds several.
        progress: optional callback receiving `ProgressEvent`s.

    Returns:
        The dataset: images sorted by path, boxes xyxy in absolute pixels, issues collected.

    Raises:
        DatasetError: the dataset cannot be read at all (the message says why and where).
    """
    return read_dataset_with_details(root, format, class_names, annotations, progress).dataset


def read_dataset_with_details(
    root: Path,
    format: LabelFormat,
    class_names: list[str] | None = None,
    annotations: Path | None = None,
    progress: ProgressCallback | None = None,
) -> ReadResult:
    """`read_dataset`, also returning the images left out and the number of label files."""
    reader = READERS.get(format)
    if reader is None:
        raise DatasetError(f"Unknown label format {format!r}; choose one of {sorted(READERS)}")
    result = reader(Path(root), list(class_names) if class_names else None, annotations, progress)
    result.dataset.images.sort(key=lambda image: str(image.image_path))
    _summarise(result.dataset)
    return result


def _summarise(dataset: Dataset) -> None:
    """Dataset-wide infos: crowd regions kept, box-only instances beside polygons."""
    log = IssueLog(dataset.root)
    crowd = sum(int(image.iscrowd.sum()) for image in dataset.images)
    if crowd:
        log.add("crowd", dataset.root, f"{crowd} crowd region(s) kept with iscrowd=1")
    with_segment = sum(s is not None for image in dataset.images for s in image.segments)
    total = sum(image.num_instances for image in dataset.images)
    if 0 < with_segment < total:
        log.add(
            "box-only-instances",
            dataset.root,
            f"{total - with_segment} of {total} instances have a box but no polygon or mask",
        )
    dataset.issues.extend(log.issues)
