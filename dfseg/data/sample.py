"""`Sample`: one image and its instances in network-input pixels, as the augmentations see it.

Every per-instance array is indexed alike, so selecting rows (`select`) keeps labels, boxes,
masks and ids consistent by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from dfseg.data.instance_geometry import rasterize_instances, transform_boxes_xyxy
from dfseg.ops.masks import masks_to_boxes_xyxy
from dfseg.structures import ImageAnnotation


@dataclass
class Sample:
    """An image and its instances in the same pixel space.

    Attributes:
        image: [H, W, 3] uint8 RGB.
        labels: [N] int64 class ids.
        boxes_xyxy: [N, 4] float32 absolute xyxy pixels of `image`.
        masks: [N, H, W] uint8 {0, 1} instance masks, or None when masks are not needed (detect).
        has_mask: [N] bool, False for box-only instances (their mask is their box).
        instance_keys: [N, 2] int64 (dataset image index, instance index in its annotation):
            where each instance came from, also through mosaics.
        iscrowd: [N] bool COCO crowd flags.
    """

    image: np.ndarray
    labels: np.ndarray
    boxes_xyxy: np.ndarray
    masks: np.ndarray | None
    has_mask: np.ndarray
    instance_keys: np.ndarray
    iscrowd: np.ndarray

    @property
    def num_instances(self) -> int:
        return len(self.labels)

    @property
    def hw(self) -> tuple[int, int]:
        return self.image.shape[0], self.image.shape[1]

    def select(self, keep: np.ndarray) -> Sample:
        """The same image with only the instances picked by a bool mask or index array."""
        return Sample(
            image=self.image,
            labels=self.labels[keep],
            boxes_xyxy=self.boxes_xyxy[keep],
            masks=None if self.masks is None else self.masks[keep],
            has_mask=self.has_mask[keep],
            instance_keys=self.instance_keys[keep],
            iscrowd=self.iscrowd[keep],
        )

    @classmethod
    def empty(cls, image: np.ndarray, with_masks: bool) -> Sample:
        """An image without instances (a background)."""
        height, width = image.shape[:2]
        return cls(
            image=image,
            labels=np.zeros(0, np.int64),
            boxes_xyxy=np.zeros((0, 4), np.float32),
            masks=np.zeros((0, height, width), np.uint8) if with_masks else None,
            has_mask=np.zeros(0, bool),
            instance_keys=np.zeros((0, 2), np.int64),
            iscrowd=np.zeros(0, bool),
        )

    def with_clipped_boxes(self) -> Sample:
        """Boxes clipped to the image."""
        height, width = self.hw
        limits = np.array([width, height, width, height], dtype=np.float32)
        return replace(self, boxes_xyxy=np.clip(self.boxes_xyxy, 0, limits).astype(np.float32))

    def with_boxes_from_masks(self) -> Sample:
        """Boxes recomputed as the tight bounds of the masks (what keeps them right under
        rotation and cropping); unchanged when there are no masks."""
        if self.masks is None:
            return self
        return replace(self, boxes_xyxy=masks_to_boxes_xyxy(self.masks))

    def without_small_instances(self, min_size: float) -> Sample:
        """Drop instances whose box is narrower or lower than `min_size` pixels (or empty)."""
        widths = self.boxes_xyxy[:, 2] - self.boxes_xyxy[:, 0]
        heights = self.boxes_xyxy[:, 3] - self.boxes_xyxy[:, 1]
        keep = (widths >= min_size) & (heights >= min_size)
        if self.masks is not None and len(self.masks):
            keep &= self.masks.any(axis=(1, 2))
        return self if keep.all() else self.select(keep)


def instances_to_sample(
    image: np.ndarray,
    annotation: ImageAnnotation,
    image_index: int,
    affine: np.ndarray,
    with_masks: bool,
    keep_crowd: bool,
    region_xyxy: tuple[int, int, int, int] | None = None,
) -> Sample:
    """A `Sample` from an image already mapped to its output space and its annotation.

    Args:
        image: [H, W, 3] uint8 RGB in output space.
        annotation: the instances in original-image pixels.
        image_index: the annotation's index in the dataset (for `instance_keys`).
        affine: [2, 3] original -> output pixels (the map `image` went through).
        with_masks: rasterise instance masks (segment task).
        keep_crowd: keep crowd instances (evaluation) or drop them (training).
        region_xyxy: integer pixel rectangle of the output where this image is visible (a mosaic
            tile); instances outside it are left out, boxes clipped and masks cut to it.

    Returns:
        The sample; boxes are the mapped annotation boxes (clipped only to `region_xyxy`).
    """
    keep = np.ones(annotation.num_instances, bool) if keep_crowd else ~annotation.iscrowd
    boxes = transform_boxes_xyxy(annotation.boxes_xyxy, affine)  # [N, 4] output pixels
    if region_xyxy is not None:
        x1, y1, x2, y2 = region_xyxy
        boxes = np.clip(boxes, [x1, y1, x1, y1], [x2, y2, x2, y2])
        keep &= (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    indices = np.flatnonzero(keep)
    masks = None
    has_mask = np.zeros(len(indices), bool)
    if with_masks:
        segments = [annotation.segments[i] for i in indices]
        source_boxes = annotation.boxes_xyxy[indices]
        masks, has_mask = rasterize_instances(segments, source_boxes, affine, image.shape[:2])
        if region_xyxy is not None:
            masks = _cut_to_region(masks, region_xyxy)
    return Sample(
        image=image,
        labels=annotation.labels[indices].astype(np.int64),
        boxes_xyxy=boxes[indices],
        masks=masks,
        has_mask=has_mask,
        instance_keys=np.stack([np.full(len(indices), image_index), indices], axis=1).astype(
            np.int64
        ),
        iscrowd=annotation.iscrowd[indices].astype(bool),
    )


def _cut_to_region(masks: np.ndarray, region_xyxy: tuple[int, int, int, int]) -> np.ndarray:
    x1, y1, x2, y2 = region_xyxy
    cut = np.zeros_like(masks)
    cut[:, y1:y2, x1:x2] = masks[:, y1:y2, x1:x2]
    return cut


def concatenate_samples(image: np.ndarray, parts: Sequence[Sample]) -> Sample:
    """One sample holding the instances of all parts (e.g. mosaic tiles) over `image`."""
    height, width = image.shape[:2]
    part_masks = [part.masks for part in parts if part.masks is not None]
    masks = np.concatenate([np.zeros((0, height, width), np.uint8), *part_masks])
    return Sample(
        image=image,
        labels=np.concatenate([np.zeros(0, np.int64), *(p.labels for p in parts)]),
        boxes_xyxy=np.concatenate([np.zeros((0, 4), np.float32), *(p.boxes_xyxy for p in parts)]),
        masks=masks if part_masks else None,
        has_mask=np.concatenate([np.zeros(0, bool), *(p.has_mask for p in parts)]),
        instance_keys=np.concatenate(
            [np.zeros((0, 2), np.int64), *(p.instance_keys for p in parts)]
        ),
        iscrowd=np.concatenate([np.zeros(0, bool), *(p.iscrowd for p in parts)]),
    )
