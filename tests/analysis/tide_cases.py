"""A hand-built image with exactly one error of each TIDE type, and a reference COCO AP."""

from __future__ import annotations

import numpy as np

from dfseg.metrics import ImageGroundTruth, ImagePredictions
from dfseg.metrics.masks import rle_from_boxes_xyxy

CAT, DOG = 0, 1
IMAGE_HW = (720, 720)

# Objects: g0..g2 are found, g3 is missed, g4 is hit by a classification error, g5 by a
# localization error.
GT_BOXES = np.array(
    [
        [0, 0, 100, 100],  # g0 cat
        [200, 0, 300, 100],  # g1 cat
        [0, 200, 100, 300],  # g2 dog
        [200, 200, 300, 300],  # g3 cat, nothing near it: missed
        [400, 400, 500, 500],  # g4 dog, predicted as a cat
        [400, 0, 500, 100],  # g5 cat, predicted half a box off (IoU 1/3)
    ],
    dtype=np.float64,
)
GT_LABELS = np.array([CAT, CAT, DOG, CAT, DOG, CAT])

# name: (box, label, score, expected outcome)
PREDICTIONS = {
    "p0": ([0, 0, 100, 100], CAT, 0.90, "true_positive"),  # g0
    "p1": ([0, 0, 100, 90], CAT, 0.85, "duplicate"),  # g0 again (IoU 0.9)
    "p2": ([400, 400, 500, 500], CAT, 0.80, "classification"),  # g4 with the wrong class
    "p3": ([450, 0, 550, 100], CAT, 0.75, "localization"),  # g5 at IoU 1/3
    "p6": ([200, 0, 300, 100], CAT, 0.70, "true_positive"),  # g1
    "p4": ([600, 600, 700, 700], DOG, 0.90, "background"),  # nothing there
    "p5": ([250, 0, 350, 100], DOG, 0.85, "both"),  # on cat g1 at IoU 1/3, wrong class
    "p7": ([0, 200, 100, 300], DOG, 0.78, "true_positive"),  # g2
}


def case_ground_truth(with_masks: bool = False) -> ImageGroundTruth:
    masks = rle_from_boxes_xyxy(GT_BOXES, *IMAGE_HW) if with_masks else None
    return ImageGroundTruth(GT_BOXES, GT_LABELS, masks=masks, image_size=IMAGE_HW)


def case_predictions(with_masks: bool = False, names: list[str] | None = None) -> ImagePredictions:
    names = names or list(PREDICTIONS)
    boxes = np.array([PREDICTIONS[n][0] for n in names], dtype=np.float64).reshape(-1, 4)
    masks = rle_from_boxes_xyxy(boxes, *IMAGE_HW) if with_masks else None
    return ImagePredictions(
        boxes_xyxy=boxes,
        scores=np.array([PREDICTIONS[n][2] for n in names]),
        labels=np.array([PREDICTIONS[n][1] for n in names]),
        masks=masks,
    )


def reference_ap(hits: list[bool], num_objects: int) -> float:
    """COCO's 101-point interpolated AP of one class from its score-ordered TP/FP sequence."""
    is_hit = np.array(hits, bool)
    tp, fp = np.cumsum(is_hit), np.cumsum(~is_hit)
    recall = tp / num_objects
    precision = tp / (tp + fp + np.spacing(1))
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    points = np.linspace(0.0, 1.0, 101)
    index = np.searchsorted(recall, points, side="left")
    return float(sum(envelope[i] for i in index if i < len(envelope)) / 101)
