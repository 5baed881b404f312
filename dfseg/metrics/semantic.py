"""Semantic-segmentation metrics from a pixel confusion matrix (mmsegmentation's definitions).

Per class c, with TP the pixels labelled c and predicted c, FP the other pixels predicted c and FN
the pixels labelled c but predicted otherwise (ignored pixels never count):

    IoU_c  = TP / (TP + FP + FN)   NaN when c is neither labelled nor predicted anywhere
    Acc_c  = TP / (TP + FN)        per-class pixel accuracy (recall); NaN without pixels of c
    Prec_c = TP / (TP + FP)        NaN when c is never predicted

mIoU, mPA and mean precision average the classes where the value is defined (NaN when none is);
a class predicted but never labelled has IoU 0 and so lowers mIoU. Pixel accuracy is trace / total
and fwIoU weighs each class's IoU by its share of the labelled pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from dfseg.metrics.errors import MetricsInputError

IGNORE_INDEX = 255
"""Label value of unlabelled pixels; the same as `dfseg.ops.semantic.IGNORE_INDEX` (not imported
from there: that module pulls in torch, and metrics stay numpy-only)."""

SEMANTIC_COLUMNS: list[str] = [
    "metrics/mIoU",
    "metrics/mPA",
    "metrics/mPrecision",
    "metrics/pixel_acc",
    "metrics/fwIoU",
]
"""results.csv's metric columns of the semantic task, in order (`SemanticReport.to_row`)."""

SCORE_FIELDS: dict[str, str] = {"miou": "miou", "mpa": "mpa", "pixel_acc": "pixel_accuracy"}
"""Metric name (as the training config spells it) -> the `SemanticReport` field it reads."""

_SHOWN_BAD_VALUES = 5


def semantic_confusion(
    pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> np.ndarray:
    """Pixel confusion of one image.

    Args:
        pred: [H, W] integer predicted class per pixel, 0..C-1 (also where the label is ignored).
        target: [H, W] integer labelled class per pixel, 0..C-1 or `ignore_index` (left out).
        num_classes: C.
        ignore_index: the label value of unlabelled pixels.

    Returns:
        [C, C] int64 pixel counts, rows = labelled class, columns = predicted class.

    Raises:
        MetricsInputError: the maps differ in shape, hold non-integers, or a value is no class.
    """
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise MetricsInputError(
            f"prediction map {pred.shape} and label map {target.shape} differ in shape"
        )
    if num_classes < 1:
        raise MetricsInputError(f"num_classes must be at least 1, got {num_classes}")
    last = num_classes - 1
    guess = _as_indices(pred, "prediction")  # [H*W]
    truth = _as_indices(target, "label")  # [H*W]
    if bad := _out_of_range(guess, num_classes):
        raise MetricsInputError(f"prediction value {bad} is not a class index (0..{last})")
    labelled = truth != ignore_index
    truth, guess = truth[labelled], guess[labelled]  # [P] labelled pixels only
    if bad := _out_of_range(truth, num_classes):
        raise MetricsInputError(
            f"label value {bad} is neither a class index (0..{last}) nor ignore ({ignore_index})"
        )
    counts = np.bincount(truth * num_classes + guess, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64, copy=False)


def _as_indices(values: np.ndarray, what: str) -> np.ndarray:
    """Flat int64 copy of an integer map (floats or booleans are refused, not truncated)."""
    if not np.issubdtype(values.dtype, np.integer):
        raise MetricsInputError(f"{what} map must hold integer class indices, got {values.dtype}")
    return values.astype(np.int64, copy=False).ravel()


def _out_of_range(values: np.ndarray, num_classes: int) -> str:
    """The values outside 0..num_classes-1 and their pixel count as text ("" when none)."""
    bad = (values < 0) | (values >= num_classes)
    if not bad.any():
        return ""
    shown = ", ".join(str(v) for v in np.unique(values[bad])[:_SHOWN_BAD_VALUES])
    return f"{shown} ({int(bad.sum())} pixels)"


class SemanticClassRow(BaseModel):
    """One class's numbers (NaN where undefined, see the module docstring).

    Attributes:
        gt_pixels: labelled pixels of the class.
        pixel_share: gt_pixels / all labelled pixels (NaN when nothing is labelled).
        images: images whose labels contain the class.
    """

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    name: str
    iou: float
    accuracy: float
    precision: float
    gt_pixels: int
    pixel_share: float
    images: int


class SemanticReport(BaseModel):
    """Validation results of a semantic model on one split. NaN where undefined; JSON writes NaN
    as the string "NaN" so that reports round-trip.

    Attributes:
        miou: mean IoU over the classes with a defined IoU.
        mpa: mean per-class pixel accuracy (recall) over the labelled classes.
        mean_precision: mean precision over the predicted classes.
        pixel_accuracy: correctly classified / all labelled pixels.
        fwiou: IoU weighted by each class's share of the labelled pixels.
        images: images the confusion covers.
        classes: one row per class id, in order.
        confusion: [C, C] pixel counts, rows = labelled class, columns = predicted class.
    """

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    task: Literal["semantic"] = "semantic"
    miou: float
    mpa: float
    mean_precision: float
    pixel_accuracy: float
    fwiou: float
    images: int
    classes: list[SemanticClassRow]
    confusion: list[list[int]]

    def to_row(self) -> dict[str, float]:
        """The metric columns of results.csv (`SEMANTIC_COLUMNS`); values may be NaN."""
        values = (self.miou, self.mpa, self.mean_precision, self.pixel_accuracy, self.fwiou)
        return dict(zip(SEMANTIC_COLUMNS, values, strict=True))

    def class_table(self) -> list[dict[str, float | int | str]]:
        """An "all" row (the means, all labelled pixels), then one row per class: per_class.csv."""
        total = sum(row.gt_pixels for row in self.classes)
        overall = _table_row(
            "all", self.images, total, 1.0, self.miou, self.mpa, self.mean_precision
        )
        return [overall] + [
            _table_row(
                row.name, row.images, row.gt_pixels, row.pixel_share, row.iou, row.accuracy,
                row.precision,
            )
            for row in self.classes
        ]  # fmt: skip

    def score(self, metric: str) -> float:
        """The number that picks the best checkpoint.

        Args:
            metric: "miou", "mpa" or "pixel_acc".

        Returns:
            Its value, 0.0 where undefined (NaN).

        Raises:
            ValueError: an unknown metric name.
        """
        if metric not in SCORE_FIELDS:
            raise ValueError(
                f"unknown semantic metric {metric!r}; expected one of {sorted(SCORE_FIELDS)}"
            )
        value = float(getattr(self, SCORE_FIELDS[metric]))
        return value if np.isfinite(value) else 0.0

    def confusion_array(self) -> np.ndarray:
        """[C, C] int64 pixel counts, rows = labelled class, columns = predicted class."""
        size = len(self.classes)
        return np.asarray(self.confusion, dtype=np.int64).reshape(size, size)


def _table_row(
    name: str,
    images: int,
    gt_pixels: int,
    pixel_share: float,
    iou: float,
    accuracy: float,
    precision: float,
) -> dict[str, float | int | str]:
    """One per_class.csv row; the key order is the column order."""
    return {
        "class": name, "images": images, "gt_pixels": gt_pixels, "pixel_share": pixel_share,
        "iou": iou, "accuracy": accuracy, "precision": precision,
    }  # fmt: skip


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator elementwise, NaN where the denominator is 0 (no warning)."""
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _nanmean(values: np.ndarray) -> float:
    """Mean of the defined values; NaN when none is (no warning)."""
    defined = values[np.isfinite(values)]
    return float(defined.mean()) if defined.size else float("nan")


def _check_report_inputs(
    matrix: np.ndarray, num_classes: int, class_images: Sequence[int] | None
) -> None:
    """Raise unless the confusion is a non-negative [C, C] and `class_images` has C entries."""
    if matrix.shape != (num_classes, num_classes):
        raise MetricsInputError(
            f"confusion of shape {matrix.shape} does not fit {num_classes} class names"
        )
    if matrix.size and int(matrix.min()) < 0:
        raise MetricsInputError(f"confusion holds a negative count ({int(matrix.min())})")
    if class_images is not None and len(class_images) != num_classes:
        raise MetricsInputError(
            f"{len(class_images)} per-class image counts for {num_classes} classes"
        )


def build_semantic_report(
    confusion: np.ndarray,
    class_names: Sequence[str],
    images: int,
    class_images: Sequence[int] | None = None,
) -> SemanticReport:
    """The report of a pixel confusion matrix.

    Args:
        confusion: [C, C] pixel counts, rows = labelled class, columns = predicted class.
        class_names: C names, by class id.
        images: images the confusion covers.
        class_images: C counts, per class the images whose labels contain it (None: zeros).

    Raises:
        MetricsInputError: the confusion is not [C, C] for C names, has negative counts, or
            `class_images` has not C entries.
    """
    matrix = np.asarray(confusion).astype(np.int64)
    num_classes = len(class_names)
    _check_report_inputs(matrix, num_classes, class_images)
    true_positive = np.diag(matrix).astype(np.float64)  # [C]
    labelled = matrix.sum(axis=1).astype(np.float64)  # [C] TP + FN
    predicted = matrix.sum(axis=0).astype(np.float64)  # [C] TP + FP
    iou = _ratio(true_positive, labelled + predicted - true_positive)  # [C]
    accuracy = _ratio(true_positive, labelled)  # [C]
    precision = _ratio(true_positive, predicted)  # [C]
    total = float(labelled.sum())
    share = labelled / total if total > 0 else np.full(num_classes, np.nan)  # [C]
    # every labelled class has a defined IoU, so weighting only those leaves nothing out
    present = labelled > 0
    fwiou = float((share[present] * iou[present]).sum()) if present.any() else float("nan")
    counts = [0] * num_classes if class_images is None else [int(n) for n in class_images]
    rows = [
        SemanticClassRow(
            name=name, iou=float(iou[c]), accuracy=float(accuracy[c]),
            precision=float(precision[c]), gt_pixels=int(labelled[c]),
            pixel_share=float(share[c]), images=counts[c],
        )
        for c, name in enumerate(class_names)
    ]  # fmt: skip
    return SemanticReport(
        miou=_nanmean(iou),
        mpa=_nanmean(accuracy),
        mean_precision=_nanmean(precision),
        pixel_accuracy=float(true_positive.sum() / total) if total > 0 else float("nan"),
        fwiou=fwiou,
        images=images,
        classes=rows,
        confusion=matrix.tolist(),
    )


class SemanticScores(BaseModel):
    """The headline numbers of a `SemanticReport` (bench and quantize rows)."""

    model_config = ConfigDict(ser_json_inf_nan="strings")

    miou: float
    mpa: float
    mean_precision: float
    pixel_accuracy: float

    @classmethod
    def of(cls, report: SemanticReport) -> SemanticScores:
        return cls(
            miou=report.miou,
            mpa=report.mpa,
            mean_precision=report.mean_precision,
            pixel_accuracy=report.pixel_accuracy,
        )


class SemanticAccumulator:
    """The pixel confusion of many images, added one at a time and merged across ranks.

    Args:
        num_classes: C.
        ignore_index: the label value of unlabelled pixels.
    """

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self._confusion = np.zeros((num_classes, num_classes), dtype=np.int64)  # [C, C]
        self._class_images = np.zeros(num_classes, dtype=np.int64)  # [C]
        self._images = 0

    @property
    def confusion(self) -> np.ndarray:
        """[C, C] int64 pixel counts so far (a copy), rows labelled, columns predicted."""
        return self._confusion.copy()

    @property
    def images(self) -> int:
        """Images added so far."""
        return self._images

    @property
    def class_images(self) -> np.ndarray:
        """[C] int64, per class the images whose labels contain it (a copy)."""
        return self._class_images.copy()

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        """Add one image's [H, W] predicted and labelled class maps (see `semantic_confusion`)."""
        matrix = semantic_confusion(pred, target, self.num_classes, self.ignore_index)
        self._confusion += matrix
        self._class_images += matrix.sum(axis=1) > 0
        self._images += 1

    def merge(self, other: SemanticAccumulator) -> None:
        """Add another accumulator's images (another rank's share) to this one.

        Raises:
            MetricsInputError: the two count different classes or ignore different labels.
        """
        if (other.num_classes, other.ignore_index) != (self.num_classes, self.ignore_index):
            raise MetricsInputError(
                f"cannot merge counts of {other.num_classes} classes (ignore {other.ignore_index}) "
                f"into counts of {self.num_classes} classes (ignore {self.ignore_index})"
            )
        self._confusion += other._confusion
        self._class_images += other._class_images
        self._images += other._images

    def report(self, class_names: Sequence[str]) -> SemanticReport:
        """The metrics of every image added so far (`build_semantic_report`)."""
        return build_semantic_report(
            self._confusion, class_names, self._images, self._class_images.tolist()
        )


def plot_semantic_confusion(
    report: SemanticReport, path: str | Path, normalize: bool = True
) -> Path:
    """Draw the pixel confusion as a heat map PNG (rows labelled class, columns predicted).

    Args:
        report: whose confusion and class names to draw.
        path: PNG to write (parent folders created).
        normalize: divide each row by the class's labelled pixels (rows without any stay 0).

    Returns:
        The PNG written.
    """
    # matplotlib is heavy: imported only when a plot is drawn (Agg canvas, no pyplot state)
    from dfseg.metrics.plots.canvas import new_figure, save_png
    from dfseg.metrics.plots.confusion import MAX_CLASSES_ANNOTATED, _annotate

    values = report.confusion_array().astype(np.float64)  # [C, C]
    if normalize:
        values = values / np.maximum(values.sum(axis=1, keepdims=True), 1.0)
    names = [row.name for row in report.classes]
    size = min(max(6.0, 0.45 * len(names) + 3), 30.0)
    figure = new_figure(size + 1.5, size)
    axes = figure.add_subplot()
    image = axes.imshow(values, cmap="Blues", vmin=0, vmax=max(float(values.max()), 1e-9))
    figure.colorbar(image, ax=axes, shrink=0.8)
    ticks = np.arange(len(names))
    axes.set_xticks(ticks, names, rotation=90, fontsize="small")
    axes.set_yticks(ticks, names, fontsize="small")
    axes.set_xlabel("Predicted")
    axes.set_ylabel("True")
    kind = "rows normalised by labelled pixels" if normalize else "pixel counts"
    axes.set_title(f"Pixel confusion ({kind}; mIoU {report.miou:.3f})")
    if len(names) <= MAX_CLASSES_ANNOTATED:
        _annotate(axes, values, integer=not normalize)
    return save_png(figure, path)
