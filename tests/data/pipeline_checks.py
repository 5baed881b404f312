"""Invariants every augmented training sample must satisfy (shared by the pipeline tests)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import cv2
import numpy as np
import torch
from pipeline_fixtures import SyntheticSet, boxes_to_pixels, colour_pixels, image_to_uint8

from dfseg.ops.masks import masks_to_boxes_xyxy

PAD_GREY = np.array([114, 114, 114], np.uint8)


def check_instance_fields(
    image: torch.Tensor, target: dict[str, Any], synthetic: SyntheticSet, min_box_size: float
) -> list[tuple[int, int]]:
    """Counts agree, no instance is duplicated, labels follow their instance, boxes are inside
    the image, not tiny, and (with masks) the box of each mask equals its box within a pixel.

    Returns:
        The (image index, instance index) key of each kept instance.
    """
    assert image.dtype == torch.float32 and image.ndim == 3 and image.shape[0] == 3
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    height, width = image.shape[1:]
    count = len(target["labels"])
    assert target["labels"].dtype == torch.int64
    assert target["boxes"].shape == (count, 4) and target["boxes"].dtype == torch.float32
    assert target["instance_keys"].shape == (count, 2)
    keys = [tuple(key) for key in target["instance_keys"].tolist()]
    assert len(set(keys)) == count, "an instance was duplicated"
    for (image_index, instance_index), label in zip(keys, target["labels"].tolist(), strict=True):
        assert synthetic.annotations[image_index].labels[instance_index] == label
    boxes = boxes_to_pixels(target["boxes"].numpy(), height, width)
    assert (boxes >= -1e-3).all() and (boxes <= [width + 1e-3, height + 1e-3] * 2).all()
    assert (boxes[:, 2:] - boxes[:, :2] >= min_box_size - 1e-3).all()
    if "masks" in target:
        masks = target["masks"].numpy()
        assert masks.shape == (count, height, width) and masks.dtype == np.uint8
        assert target["has_mask"].shape == (count,)
        assert masks.any(axis=(1, 2)).all(), "an empty mask was kept"
        np.testing.assert_allclose(masks_to_boxes_xyxy(masks), boxes, atol=1.0)
    return keys


def check_colours(
    image: torch.Tensor,
    target: dict[str, Any],
    synthetic: SyntheticSet,
    source_images: Iterable[int],
    boxes_enclose_only: bool,
) -> None:
    """Geometry agrees with the pixels (geometric augmentations only): each kept instance sits on
    its own colour (or on a grey dropout hole) and each dropped instance has almost no pixels left.

    Args:
        source_images: image indices the sample was made from (all their instances are checked).
        boxes_enclose_only: boxes may be larger than the visible instance (detect task: rotated
            boxes, boxes cut at image or mosaic tile borders; parts hidden by dropout holes).
    """
    pixels = image_to_uint8(image.numpy())
    height, width = pixels.shape[:2]
    keys = [tuple(key) for key in target["instance_keys"].tolist()]
    boxes = boxes_to_pixels(target["boxes"].numpy(), height, width)
    masks = target["masks"].numpy().astype(bool) if "masks" in target else None
    for row, key in enumerate(keys):
        own = colour_pixels(pixels, synthetic.colours[key])
        if masks is not None:  # edges blend with the background: allow 2 px around the colour
            near_own = cv2.dilate(own.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
            visible = near_own | colour_pixels(pixels, PAD_GREY)
            area = masks[row].sum()
            share = 0.9 if area >= 50 else 0.5  # slivers are mostly blended edge pixels
            assert (visible & masks[row]).sum() >= share * area, f"mask {key} misplaced"
        if own.sum() < 20:  # nearly hidden (e.g. under a dropout hole): nothing to compare
            continue
        ys, xs = np.nonzero(own)
        found = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)
        assert (found[:2] >= boxes[row, :2] - 1.5).all(), f"{key} sticks out of its box"
        assert (found[2:] <= boxes[row, 2:] + 1.5).all(), f"{key} sticks out of its box"
        if not boxes_enclose_only:
            # The box may reach a little beyond the colour: blended edge pixels do not count as
            # colour, and thin spikes that the (upscaled) image lost are still in the mask.
            np.testing.assert_allclose(found, boxes[row], atol=4.0)
    for image_index in set(source_images):
        for instance_index in range(synthetic.annotations[image_index].num_instances):
            key = (image_index, instance_index)
            if key in keys:
                continue
            own = colour_pixels(pixels, synthetic.colours[key])
            if own.any():  # dropped: only a sliver (or stray edge blends) may remain
                ys, xs = np.nonzero(own)
                extent = max(np.ptp(xs), np.ptp(ys)) + 1
                assert own.sum() <= 3 * extent + 20, f"instance {key} lost though visible"
