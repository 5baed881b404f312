"""Running a `Predictor` over a split for evaluation: the unfiltered top 100 detections per image
(`EVAL_SETTINGS`, COCO's maxDets), masks run-length encoded at once. Every evaluation of an
artifact (bench, errors, quantize, NNCF's accuracy control) predicts through here; a semantic
model's class maps are scored with `evaluate_semantic_artifact`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dfseg.data.semantic import annotation_to_index_map
from dfseg.metrics import ImagePredictions
from dfseg.metrics.semantic import SemanticAccumulator, SemanticReport
from dfseg.runtime.images import read_image_bgr
from dfseg.runtime.postprocess import EVAL_SETTINGS
from dfseg.runtime.predictor import Predictor
from dfseg.structures import ImageAnnotation
from dfseg.structures.progress import ProgressCallback, ProgressEvent, report


def predict_for_evaluation(
    predictor: Predictor,
    images: Sequence[Path | np.ndarray],
    progress: ProgressCallback | None = None,
    task: str = "predict",
) -> list[ImagePredictions]:
    """Predict every image (batch 1) with `EVAL_SETTINGS`: no confidence threshold, top 100.

    Args:
        predictor: any backend; its own settings are restored afterwards.
        images: image files (decoded as training decodes them) or [H, W, 3] uint8 BGR arrays.
        progress: optional callback, one event per image.
        task: the progress events' task name.
    """
    deployed = predictor.settings
    predictor.settings = EVAL_SETTINGS
    predictions = []
    try:
        for index, image in enumerate(images):
            array = read_image_bgr(image) if isinstance(image, Path) else image
            (detections,) = predictor.predict_arrays([array])
            predictions.append(ImagePredictions.from_detections(detections))
            report(progress, ProgressEvent(task, index + 1, len(images)))
    finally:
        predictor.settings = deployed
    return predictions


def evaluate_semantic_artifact(
    predictor: Predictor,
    annotations: Sequence[ImageAnnotation],
    progress: ProgressCallback | None = None,
    task: str = "predict",
) -> SemanticReport:
    """A semantic model's metrics on labelled images (batch 1): each predicted class map in
    original pixels (`semantic_class_map`, as validation maps its logits) against the labels'
    index map.

    Args:
        predictor: a semantic model on any backend.
        annotations: the images and their labels in the semantic form.
        progress: optional callback, one event per image.
        task: the progress events' task name.
    """
    accumulator = SemanticAccumulator(len(predictor.class_names))
    for index, annotation in enumerate(annotations):
        (detections,) = predictor.predict_arrays([read_image_bgr(annotation.image_path)])
        if detections.class_map is None:
            raise ValueError(f"{predictor.backend.path} is not a semantic model")
        accumulator.update(detections.class_map, annotation_to_index_map(annotation))
        report(progress, ProgressEvent(task, index + 1, len(annotations)))
    return accumulator.report(predictor.class_names)
