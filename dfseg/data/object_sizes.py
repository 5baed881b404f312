"""Object sizes as the model will see them: every box scaled the way training resizes its image
(stretched or letterboxed to the input size), counted in COCO's small / medium / large ranges
per class, tiny instances flagged, objects per image against the number of queries, and the
facts worth acting on."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel

from dfseg.structures import Dataset

SMALL_AREA = 32**2  # COCO's ranges (pixels of area at the input the model sees)
MEDIUM_AREA = 96**2
TINY_SIDE = 4.0  # a shorter side under this many input pixels is hardly learnable
PER_IMAGE_BINS = (0, 1, 2, 6, 11, 21, 51, 101, 301)  # lower bounds: 0, 1, 2-5, 6-10, ...


class ClassSizes(BaseModel):
    """Instances of one class by COCO size range at the input size, and the tiny ones."""

    name: str
    small: int
    medium: int
    large: int
    tiny: int
    median_side: float


class ObjectSizeReport(BaseModel):
    """Sizes at the input size the project trains at.

    Attributes:
        input_hw: (height, width) of the network input.
        keep_ratio: letterboxed (True) or stretched.
        classes: one row per class.
        per_image: objects-per-image bin label ("0", "1", "2-5", ...) -> images.
        max_per_image: most objects in one image; over_queries: images with more objects
            than the model has queries.
        tiny_examples: "path: class" of up to 10 tiny instances.
        facts: plain statements worth acting on.
    """

    input_hw: tuple[int, int]
    keep_ratio: bool
    classes: list[ClassSizes]
    per_image: dict[str, int]
    max_per_image: int
    over_queries: int
    tiny_examples: list[str]
    facts: list[str]


def input_scale(width: int, height: int, input_hw: tuple[int, int], keep_ratio: bool) -> np.ndarray:
    """[2] (x, y) factors from image pixels to input pixels, as training resizes."""
    sx, sy = input_hw[1] / width, input_hw[0] / height
    if keep_ratio:
        sx = sy = min(sx, sy)
    return np.array([sx, sy], dtype=np.float64)


def object_size_report(
    dataset: Dataset, input_hw: tuple[int, int], keep_ratio: bool, num_queries: int = 300
) -> ObjectSizeReport:
    """Object sizes of `dataset` at `input_hw` (crowd regions not counted)."""
    num_classes = len(dataset.class_names)
    counts = np.zeros((num_classes, 4), dtype=np.int64)  # small, medium, large, tiny
    sides: list[list[float]] = [[] for _ in range(num_classes)]
    per_image: list[int] = []
    tiny_examples: list[str] = []
    for image in dataset.images:
        keep = ~image.iscrowd
        boxes, labels = image.boxes_xyxy[keep].astype(np.float64), image.labels[keep]
        per_image.append(len(labels))
        if not len(labels):
            continue
        scale = input_scale(image.width, image.height, input_hw, keep_ratio)
        wh = (boxes[:, 2:] - boxes[:, :2]) * scale  # [N, 2] input pixels
        area, shorter = wh[:, 0] * wh[:, 1], wh.min(axis=1)
        size_bin = np.digitize(area, [SMALL_AREA, MEDIUM_AREA])  # 0 small, 1 medium, 2 large
        for label, bin_index, side in zip(
            labels.tolist(), size_bin.tolist(), shorter.tolist(), strict=True
        ):
            if 0 <= label < num_classes:
                counts[label, bin_index] += 1
                sides[label].append(side)
                if side < TINY_SIDE:
                    counts[label, 3] += 1
                    if len(tiny_examples) < 10:
                        tiny_examples.append(f"{image.image_path}: {dataset.class_names[label]}")
    medians = [round(float(np.median(s)), 1) if s else 0.0 for s in sides]
    classes = [
        ClassSizes(
            name=name, small=int(counts[k, 0]), medium=int(counts[k, 1]), large=int(counts[k, 2]),
            tiny=int(counts[k, 3]), median_side=medians[k],
        )
        for k, name in enumerate(dataset.class_names)
    ]  # fmt: skip
    histogram = _per_image_histogram(per_image)
    over = sum(count > num_queries for count in per_image)
    report = ObjectSizeReport(
        input_hw=input_hw, keep_ratio=keep_ratio, classes=classes, per_image=histogram,
        max_per_image=max(per_image, default=0), over_queries=over,
        tiny_examples=tiny_examples, facts=[],
    )  # fmt: skip
    report.facts = size_facts(report, [s for group in sides for s in group], num_queries)
    return report


def _per_image_histogram(per_image: Sequence[int]) -> dict[str, int]:
    bounds = list(PER_IMAGE_BINS)
    labels = []
    for low, high in zip(bounds, [*bounds[1:], None], strict=True):
        if high is None:
            labels.append(f"{low}+")
        elif high - low == 1:
            labels.append(str(low))
        else:
            labels.append(f"{low}-{high - 1}")
    bins = np.digitize(np.asarray(per_image, dtype=np.int64), bounds[1:])  # [I] bin index
    return {label: int(np.sum(bins == i)) for i, label in enumerate(labels)}


def size_facts(
    report: ObjectSizeReport, shorter_sides: Sequence[float], num_queries: int
) -> list[str]:
    """Statements about the sizes that call for a decision, with the numbers behind them."""
    facts = []
    total = len(shorter_sides)
    height, width = report.input_hw
    at = f"at {width}x{height}"
    if total:
        sides = np.asarray(shorter_sides)
        under16 = float(np.mean(sides < 16))
        if under16 >= 0.2:
            facts.append(
                f"{under16:.0%} of instances are under 16 px on their shorter side {at}: consider "
                "a larger data.image_size or tiled inference"
            )
        tiny = int(np.sum(sides < TINY_SIDE))
        if tiny:
            facts.append(
                f"{tiny} instances are under {TINY_SIDE:g} px {at} (listed): the model can hardly "
                "find them; check their labels or enlarge the input"
            )
        small = sum(c.small for c in report.classes)
        facts.append(f"{small / total:.0%} of instances are COCO-small (under 32x32 px {at})")
    if report.over_queries:
        facts.append(
            f"{report.over_queries} images hold more than {num_queries} objects, the model's "
            f"queries (at most {report.max_per_image} in one image): raise model.num_queries"
        )
    return facts
