"""`CocoParams` and `CocoResult`: COCO's evaluation settings and what comes out of them.

Array layouts follow pycocotools' `COCOeval.eval` so code written against it carries over:
precision [T, R, K, A, M], recall [T, K, A, M], with -1 where a class has no (non-ignored)
ground truth for that area range.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SUMMARY_NAMES: tuple[str, ...] = (
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
)  # fmt: skip
"""The 12 numbers of `COCOeval.summarize()`, in its order."""


def _coco_iou_thresholds() -> np.ndarray:
    # Same expression as pycocotools so that `== 0.75` finds the AP75 row exactly.
    return np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)


def _coco_recall_thresholds() -> np.ndarray:
    return np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)


@dataclass(frozen=True)
class CocoParams:
    """COCO evaluation settings (defaults are pycocotools' for bbox and segm).

    Attributes:
        iou_thresholds: [T] overlap thresholds.
        recall_thresholds: [R] recall points of the interpolated precision (101).
        max_dets: ascending per-image-and-class prediction budgets (pycocotools applies them per
            image *and category*).
        area_ranges: [A] inclusive (low, high) object area ranges in pixels^2.
        area_labels: names of the area ranges; the first must cover all objects.
    """

    iou_thresholds: np.ndarray = field(default_factory=_coco_iou_thresholds)
    recall_thresholds: np.ndarray = field(default_factory=_coco_recall_thresholds)
    max_dets: tuple[int, ...] = (1, 10, 100)
    area_ranges: tuple[tuple[float, float], ...] = (
        (0**2, 1e5**2), (0**2, 32**2), (32**2, 96**2), (96**2, 1e5**2),
    )  # fmt: skip
    area_labels: tuple[str, ...] = ("all", "small", "medium", "large")


@dataclass
class CocoResult:
    """COCO mAP/mAR of one iou_type, numerically equal to pycocotools' COCOeval.

    Attributes:
        iou_type: "bbox" or "segm".
        params: the settings used.
        precision: [T, R, K, A, M] interpolated precision at each recall threshold; -1 = no GT.
        recall: [T, K, A, M] final recall; -1 = no GT.
        scores: [T, R, K, A, M] score at which each recall threshold is reached (0 if never).
        num_instances: [K] non-crowd ground-truth instances per class.
        num_images_with_class: [K] images containing at least one non-crowd instance per class.
    """

    iou_type: str
    params: CocoParams
    precision: np.ndarray
    recall: np.ndarray
    scores: np.ndarray
    num_instances: np.ndarray
    num_images_with_class: np.ndarray

    @property
    def num_classes(self) -> int:
        return self.precision.shape[2]

    def _summarize(
        self, ap: bool, iou: float | None = None, area: str = "all", max_dets: int = 100
    ) -> float:
        """pycocotools `_summarize`: mean over valid entries, -1 if there are none."""
        area_index = [i for i, label in enumerate(self.params.area_labels) if label == area]
        det_index = [i for i, m in enumerate(self.params.max_dets) if m == max_dets]
        values = self.precision if ap else self.recall
        if iou is not None:
            values = values[np.where(iou == self.params.iou_thresholds)[0]]
        values = (
            values[:, :, :, area_index, det_index] if ap else values[:, :, area_index, det_index]
        )
        valid = values[values > -1]
        return -1.0 if len(valid) == 0 else float(np.mean(valid))

    @property
    def stats(self) -> np.ndarray:
        """[12] the numbers `COCOeval.summarize()` prints, in its order (see `SUMMARY_NAMES`)."""
        fewest, fewer, top = (
            self.params.max_dets[0],
            self.params.max_dets[1],
            self.params.max_dets[-1],
        )
        return np.array(
            [
                self._summarize(True, max_dets=top),
                self._summarize(True, iou=0.5, max_dets=top),
                self._summarize(True, iou=0.75, max_dets=top),
                self._summarize(True, area="small", max_dets=top),
                self._summarize(True, area="medium", max_dets=top),
                self._summarize(True, area="large", max_dets=top),
                self._summarize(False, max_dets=fewest),
                self._summarize(False, max_dets=fewer),
                self._summarize(False, max_dets=top),
                self._summarize(False, area="small", max_dets=top),
                self._summarize(False, area="medium", max_dets=top),
                self._summarize(False, area="large", max_dets=top),
            ]
        )

    def summary(self) -> dict[str, float]:
        """{"AP": ..., "AP50": ..., ..., "ARl": ...}; -1 means undefined (no ground truth)."""
        return dict(zip(SUMMARY_NAMES, (float(v) for v in self.stats), strict=True))

    @property
    def map50_95(self) -> float:
        return float(self.stats[0])

    @property
    def map50(self) -> float:
        return float(self.stats[1])

    def per_class_ap(self, iou: float | None = None) -> np.ndarray:
        """[K] AP per class over all IoU thresholds (or at one), area "all", largest maxDets.

        NaN for classes without ground truth (pycocotools' -1 entries are left out).
        """
        values = self.precision[..., 0, -1]  # [T, R, K]
        if iou is not None:
            values = values[np.isclose(self.params.iou_thresholds, iou)]
        per_class = np.full(self.num_classes, np.nan)
        for k in range(self.num_classes):
            valid = values[:, :, k][values[:, :, k] > -1]
            if len(valid):
                per_class[k] = float(np.mean(valid))
        return per_class

    def pr_curve(self, iou: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
        """(recall [R], precision [K, R]) at one IoU threshold, area "all", largest maxDets.

        Precision is NaN for classes without ground truth.
        """
        row = int(np.argmin(np.abs(self.params.iou_thresholds - iou)))
        precision = self.precision[row, :, :, 0, -1].T.copy()  # [K, R]
        precision[precision < 0] = np.nan
        return self.params.recall_thresholds, precision
