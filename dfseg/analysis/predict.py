"""Running a `Predictor` over a split for evaluation: unfiltered top-100 detections per image
(COCO's maxDets), masks run-length encoded at once (a split of dense masks would not fit in
memory)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from dfseg.data.image_reader import read_image_rgb
from dfseg.metrics import ImagePredictions
from dfseg.metrics.masks import encode_bool_masks
from dfseg.runtime.postprocess import PostprocessSettings
from dfseg.runtime.predictor import Predictor
from dfseg.structures import Detections
from dfseg.structures.progress import ProgressCallback, ProgressEvent, report

EVAL_MAX_DETECTIONS = 100
EVAL_SETTINGS = PostprocessSettings(conf=0.0, max_det=EVAL_MAX_DETECTIONS)


def predict_for_evaluation(
    predictor: Predictor,
    image_paths: Sequence[Path],
    progress: ProgressCallback | None = None,
    task: str = "predict",
) -> list[ImagePredictions]:
    """Predict every image (batch 1) with no confidence threshold, top 100 per image.

    The predictor's own settings are restored afterwards.
    """
    deployed = predictor.settings
    predictor.settings = EVAL_SETTINGS
    predictions = []
    try:
        for index, path in enumerate(image_paths):
            (detections,) = predictor.predict_arrays([read_dataset_image_bgr(path)])
            predictions.append(as_image_predictions(detections))
            report(progress, ProgressEvent(task, index + 1, len(image_paths)))
    finally:
        predictor.settings = deployed
    return predictions


def as_image_predictions(detections: Detections) -> ImagePredictions:
    """`Detections` -> metrics input, masks as RLE."""
    masks = None if detections.masks is None else encode_bool_masks(detections.masks)
    return ImagePredictions(detections.boxes_xyxy, detections.scores, detections.labels, masks)


def read_dataset_image_bgr(path: Path) -> np.ndarray:
    """A dataset image as [H, W, 3] uint8 BGR, decoded exactly as training and `dfseg val` decode
    it (`cv2.imread`, which also recovers the slightly truncated JPEGs real datasets contain)."""
    return cv2.cvtColor(read_image_rgb(Path(path)), cv2.COLOR_RGB2BGR)
