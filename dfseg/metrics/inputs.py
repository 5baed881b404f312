"""What the evaluators take, per image: ground truth and (unfiltered) predictions.

Boxes are xyxy in absolute pixels of the original image; class ids are contiguous and 0-based.
Masks may be given dense (bool [N, H, W]) or as RLEs; they are converted to COCO RLE once, on
first use, and cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from dfseg.metrics.errors import MetricsInputError
from dfseg.metrics.masks import (
    CocoRle,
    MaskInput,
    encode_bool_masks,
    rle_areas,
    rle_from_boxes_xyxy,
    rle_from_polygons,
    rle_from_structure,
    to_rles,
)
from dfseg.structures.annotations import RLE, ImageAnnotation, Polygons
from dfseg.structures.detections import Detections


def _boxes(value: np.ndarray, where: str) -> np.ndarray:
    boxes = np.asarray(value, dtype=np.float64)
    if boxes.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise MetricsInputError(f"{where}: boxes_xyxy must be [N, 4], got shape {boxes.shape}")
    if not np.isfinite(boxes).all():
        raise MetricsInputError(f"{where}: boxes_xyxy contains NaN or inf")
    return boxes


def _vector(value: np.ndarray, expected: int, name: str, dtype: type, where: str) -> np.ndarray:
    vector: np.ndarray = np.asarray(value).reshape(-1).astype(dtype)
    if len(vector) != expected:
        raise MetricsInputError(f"{where}: {name} has {len(vector)} entries for {expected} boxes")
    return vector


@dataclass(eq=False)
class ImageGroundTruth:
    """Annotated instances of one image.

    Attributes:
        boxes_xyxy: [N, 4] absolute pixel xyxy.
        labels: [N] contiguous 0-based class ids.
        iscrowd: [N] bool COCO crowd regions (never counted as objects; predictions on them are
            neither true nor false positives). None means no crowds.
        masks: bool [N, H, W] or N RLEs, or None for box-only ground truth.
        mask_known: [N] bool, False for an instance labelled with a box only (its entry in
            `masks` is then a stand-in, e.g. the filled box). None: every instance has a real
            mask when `masks` is given, none when it is not.
        areas: [N] object areas for COCO's small/medium/large split. None picks the COCO
            convention: mask pixel count when masks exist, else box width * height.
        image_size: (height, width); used to normalise box statistics in label plots and to
            draw stand-in masks for box-only instances.
        where: names this entry in error messages (the evaluators set "image i ground truth").

    Mask metrics ("segm") evaluate the instances that have a mask; a box-only instance becomes an
    ignore region there (a crowd region its box wide: a prediction on it is neither a true nor a
    false positive), see `for_iou_type`. Box metrics use every instance.
    """

    boxes_xyxy: np.ndarray
    labels: np.ndarray
    iscrowd: np.ndarray | None = None
    masks: MaskInput | None = None
    areas: np.ndarray | None = None
    image_size: tuple[int, int] | None = None
    where: str = field(default="ground truth", repr=False)
    mask_known: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.boxes_xyxy = _boxes(self.boxes_xyxy, self.where)
        count = len(self.boxes_xyxy)
        self.labels = _vector(self.labels, count, "labels", np.int64, self.where)
        crowd = np.zeros(count, bool) if self.iscrowd is None else self.iscrowd
        self.iscrowd = _vector(crowd, count, "iscrowd", bool, self.where)
        if self.areas is not None:
            self.areas = _vector(self.areas, count, "areas", np.float64, self.where)
        if self.mask_known is None:
            self.mask_known = np.full(count, self.masks is not None)
        self.mask_known = _vector(self.mask_known, count, "mask_known", bool, self.where)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def crowd(self) -> np.ndarray:
        """[N] bool (never None after construction)."""
        assert self.iscrowd is not None
        return self.iscrowd

    @property
    def has_masks(self) -> bool:
        return self.masks is not None

    @property
    def known_masks(self) -> np.ndarray:
        """[N] bool: the instance has a real mask (never None after construction)."""
        assert self.mask_known is not None
        return self.mask_known

    @property
    def masks_left_out(self) -> int:
        """Objects (not crowd regions) that mask metrics leave out: labelled with a box only."""
        return int((~self.known_masks & ~self.crowd).sum())

    def for_iou_type(self, iou_type: str) -> ImageGroundTruth:
        """The ground truth an evaluation of `iou_type` ("bbox" or "segm") sees.

        For "segm", box-only instances become crowd regions drawn as their filled box, so that a
        predicted mask on such an object is ignored rather than counted as a false positive, and
        the object is not counted as missed. Images whose instances all have masks (and "bbox")
        are returned as they are.
        """
        if iou_type != "segm" or len(self) == 0:
            return self
        if self.masks is not None and not (~self.known_masks & ~self.crowd).any():
            return self  # every object has a mask (or is already an ignore region)
        return self._mask_view

    @cached_property
    def _mask_view(self) -> ImageGroundTruth:
        known = self.known_masks
        if self.masks is None:
            if self.image_size is None:
                raise MetricsInputError(
                    f"{self.where}: box-only ground truth needs image_size for mask metrics"
                )
            rles = rle_from_boxes_xyxy(self.boxes_xyxy, *self.image_size)
        else:
            rles = self.rles
        return ImageGroundTruth(
            boxes_xyxy=self.boxes_xyxy,
            labels=self.labels,
            iscrowd=self.crowd | ~known,
            masks=rles,
            image_size=self.image_size,
            where=self.where,
            mask_known=known,
        )

    @cached_property
    def rles(self) -> list[CocoRle]:
        """N compressed COCO RLEs; raises when the ground truth has no masks."""
        if self.masks is None:
            if len(self) == 0:
                return []
            raise MetricsInputError(
                f"{self.where}: mask metrics need ground-truth masks, this image has boxes only"
            )
        return to_rles(self.masks, len(self), self.where)

    @cached_property
    def resolved_areas(self) -> np.ndarray:
        """[N] float64 areas used for the COCO area ranges (see `areas`)."""
        if self.areas is not None:
            return self.areas
        if self.masks is not None:
            return rle_areas(self.rles)
        return box_areas_xyxy(self.boxes_xyxy)

    @classmethod
    def from_annotation(cls, annotation: ImageAnnotation) -> ImageGroundTruth:
        """From the dataset form. Instances without an outline get their filled box as a
        stand-in mask (`mask_known` False), which mask metrics treat as an ignore region."""
        height, width = annotation.height, annotation.width
        masks: list[CocoRle] | None = None
        known = np.array([segment is not None for segment in annotation.segments], dtype=bool)
        if known.any():
            masks = [
                _segment_rle(segment, box, height, width)
                for segment, box in zip(annotation.segments, annotation.boxes_xyxy, strict=True)
            ]
        return cls(
            boxes_xyxy=annotation.boxes_xyxy,
            labels=annotation.labels,
            iscrowd=annotation.iscrowd,
            masks=masks,
            image_size=(height, width),
            where=str(annotation.image_path),
            mask_known=known,
        )


def _segment_rle(
    segment: Polygons | RLE | None, box_xyxy: np.ndarray, height: int, width: int
) -> CocoRle:
    if isinstance(segment, Polygons):
        return rle_from_polygons(segment, height, width)
    if isinstance(segment, RLE):
        return rle_from_structure(segment)
    return rle_from_boxes_xyxy(np.asarray(box_xyxy)[None], height, width)[0]


@dataclass(eq=False)
class ImagePredictions:
    """Model output for one image, unfiltered (e.g. the top 300 queries).

    Attributes:
        boxes_xyxy: [M, 4] absolute pixel xyxy.
        scores: [M] confidences.
        labels: [M] contiguous 0-based class ids.
        masks: bool [M, H, W] or M RLEs at the original image size, or None for a detector.
        where: names this entry in error messages (the evaluators set "image i predictions").
    """

    boxes_xyxy: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    masks: MaskInput | None = None
    where: str = field(default="predictions", repr=False)

    def __post_init__(self) -> None:
        self.boxes_xyxy = _boxes(self.boxes_xyxy, self.where)
        count = len(self.boxes_xyxy)
        self.scores = _vector(self.scores, count, "scores", np.float64, self.where)
        self.labels = _vector(self.labels, count, "labels", np.int64, self.where)
        if not np.isfinite(self.scores).all():
            raise MetricsInputError(f"{self.where}: scores contain NaN or inf")

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def has_masks(self) -> bool:
        return self.masks is not None

    @cached_property
    def rles(self) -> list[CocoRle]:
        """M compressed COCO RLEs; raises when the predictions have no masks."""
        if self.masks is None:
            if len(self) == 0:
                return []
            raise MetricsInputError(
                f"{self.where}: mask metrics need predicted masks; these predictions have none "
                "(evaluate a segmentation model, or use iou_type='bbox')"
            )
        return to_rles(self.masks, len(self), self.where)

    @classmethod
    def from_detections(cls, detections: Detections) -> ImagePredictions:
        """What a backend returned, masks run-length encoded at once (the dense masks of a
        whole split would not fit in memory)."""
        masks = None if detections.masks is None else encode_bool_masks(detections.masks)
        return cls(
            boxes_xyxy=detections.boxes_xyxy,
            scores=detections.scores,
            labels=detections.labels,
            masks=masks,
        )


def box_areas_xyxy(boxes_xyxy: np.ndarray) -> np.ndarray:
    """[N, 4] xyxy -> [N] float64 width * height, computed as pycocotools does from xywh."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float64)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def as_predictions(predictions: Sequence[ImagePredictions | Detections]) -> list[ImagePredictions]:
    """Accept `Detections` (what every runtime backend returns) wherever predictions are taken."""
    converted = []
    for index, prediction in enumerate(predictions):
        if isinstance(prediction, Detections):
            prediction = ImagePredictions.from_detections(prediction)
        if not isinstance(prediction, ImagePredictions):
            raise MetricsInputError(
                f"image {index}: predictions must be ImagePredictions or Detections, "
                f"got {type(prediction).__name__}"
            )
        prediction.where = f"image {index} predictions"
        converted.append(prediction)
    return converted


def check_inputs(
    ground_truths: Sequence[ImageGroundTruth],
    predictions: Sequence[ImagePredictions],
    num_classes: int | None,
) -> int:
    """Validate a dataset-sized input pair and return the number of classes.

    Args:
        ground_truths: one entry per image.
        predictions: one entry per image, same order.
        num_classes: class count; None infers max label + 1 over both.
    """
    if len(ground_truths) != len(predictions):
        raise MetricsInputError(
            f"{len(ground_truths)} ground-truth images but {len(predictions)} prediction entries; "
            "give one predictions entry per image (an empty one for images with no detections)"
        )
    for index, gt in enumerate(ground_truths):
        if gt.where == "ground truth":
            gt.where = f"image {index} ground truth"
    items: list[ImageGroundTruth | ImagePredictions] = [*ground_truths, *predictions]
    max_label = max([int(item.labels.max()) for item in items if len(item.labels)], default=-1)
    if num_classes is None:
        num_classes = max_label + 1
    for item in items:
        bad = (item.labels < 0) | (item.labels >= num_classes)
        if bad.any():
            raise MetricsInputError(
                f"{item.where}: class id {int(item.labels[bad][0])} outside 0..{num_classes - 1}; "
                "class ids must be contiguous and 0-based"
            )
    return num_classes
