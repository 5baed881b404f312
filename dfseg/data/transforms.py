"""Training augmentations (albumentations 2.x) applied alike to an image, its boxes and masks.

Each augmentation is one entry of `_TRANSFORM_FACTORIES`, keyed by the `AugmentConfig`
probability that switches it on; a probability of 0 leaves it out of the pipeline. Geometric
transforms come first, then photometric ones, then coarse dropout.

With masks (segment task) boxes are not given to albumentations at all: they are recomputed
from the transformed masks afterwards, which keeps them tight under rotation and shear. Without
masks (detect task) albumentations transforms the boxes; under rotation or shear a box becomes
the box of the rotated box ("largest_box"): it never cuts the object, but is loose for round
objects (the "ellipse" estimate is tighter on average but cuts corners off boxy ones).

Randomness: `augment_sample` reseeds every transform from one per-sample seed. Each transform
gets its own derived seed: albumentations' `Compose.set_random_seed` gives all transforms the
same seed, which makes e.g. horizontal and vertical flips (same probability) always coincide.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import replace

import albumentations as A
import cv2
import numpy as np

from dfseg.config.train import AugmentConfig
from dfseg.data.sample import Sample

PAD_VALUE = 114  # grey of padding, letterbox borders, rotated-in corners and dropout holes

_INSTANCE_INDEX = "instance_index"


def _rotate(settings: AugmentConfig, probability: float) -> A.BasicTransform:
    return A.Rotate(
        limit=(-settings.rotate_degrees, settings.rotate_degrees),
        border_mode=cv2.BORDER_CONSTANT,
        fill=PAD_VALUE,
        fill_mask=0,
        rotate_method="largest_box",
        p=probability,
    )


def _affine(settings: AugmentConfig, probability: float) -> A.BasicTransform:
    translate, shear = settings.affine_translate, settings.affine_shear
    return A.Affine(
        scale=settings.affine_scale,
        translate_percent=(-translate, translate),
        shear=(-shear, shear),
        border_mode=cv2.BORDER_CONSTANT,
        fill=PAD_VALUE,
        fill_mask=0,
        rotate_method="largest_box",
        p=probability,
    )


def _brightness_contrast(settings: AugmentConfig, probability: float) -> A.BasicTransform:
    limit = settings.brightness_contrast
    return A.RandomBrightnessContrast(brightness_limit=limit, contrast_limit=limit, p=probability)


def _blur(settings: AugmentConfig, probability: float) -> A.BaseCompose:
    kernel = settings.blur_kernel
    return A.OneOf(
        [A.GaussianBlur(blur_limit=kernel), A.MotionBlur(blur_limit=kernel)], p=probability
    )


def _coarse_dropout(settings: AugmentConfig, probability: float) -> A.BasicTransform:
    return A.CoarseDropout(
        num_holes_range=settings.coarse_dropout_holes,
        hole_height_range=settings.coarse_dropout_size,
        hole_width_range=settings.coarse_dropout_size,
        fill=PAD_VALUE,
        p=probability,
    )


_TransformFactory = Callable[[AugmentConfig, float], A.BasicTransform | A.BaseCompose]

# Probability field -> transform. Order is application order: geometry, photometry, dropout.
_TRANSFORM_FACTORIES: dict[str, _TransformFactory] = {
    "hflip": lambda settings, p: A.HorizontalFlip(p=p),
    "vflip": lambda settings, p: A.VerticalFlip(p=p),
    "rotate_prob": _rotate,
    "affine_prob": _affine,
    "brightness_contrast_prob": _brightness_contrast,
    "gamma_prob": lambda settings, p: A.RandomGamma(gamma_limit=settings.gamma_range, p=p),
    "blur_prob": _blur,
    "noise_prob": lambda settings, p: A.GaussNoise(std_range=settings.noise_std, p=p),
    "gray_prob": lambda settings, p: A.ToGray(num_output_channels=3, p=p),
    "coarse_dropout_prob": _coarse_dropout,
}


def build_train_pipeline(settings: AugmentConfig, transform_boxes: bool) -> A.Compose:
    """The albumentations pipeline of the enabled (probability > 0) augmentations.

    Args:
        settings: probabilities and magnitudes.
        transform_boxes: let albumentations transform boxes (detect task, no masks).

    Returns:
        A Compose taking `image` [H, W, 3] uint8, optional `masks` [N, H, W] uint8 and, with
        `transform_boxes`, `bboxes` [N, 4] absolute xyxy plus `instance_index` [N].
    """
    transforms = [
        factory(settings, getattr(settings, name))
        for name, factory in _TRANSFORM_FACTORIES.items()
        if getattr(settings, name) > 0
    ]
    bbox_params = None
    moves_pixels = any(
        isinstance(node, A.DualTransform) for transform in transforms for node in _walk(transform)
    )
    if transform_boxes and moves_pixels:  # photometric-only pipelines leave boxes alone
        bbox_params = A.BboxParams(
            format="pascal_voc",
            label_fields=[_INSTANCE_INDEX],
            clip=True,
            filter_invalid_bboxes=True,
        )
    return A.Compose(transforms, bbox_params=bbox_params)


def _walk(node: A.BaseCompose | A.BasicTransform) -> Iterator[A.BaseCompose | A.BasicTransform]:
    yield node
    if isinstance(node, A.BaseCompose):
        for child in node.transforms:
            yield from _walk(child)


def seed_pipeline(pipeline: A.Compose, seed: int) -> None:
    """Reseed the pipeline and each transform in it with distinct seeds derived from `seed`."""
    nodes = list(_walk(pipeline))
    for node, node_seed in zip(
        nodes, np.random.SeedSequence(seed).generate_state(len(nodes)), strict=True
    ):
        node.seed = int(node_seed)
        node.random_generator = np.random.default_rng(int(node_seed))
        node.py_random = random.Random(int(node_seed))


def augment_sample(pipeline: A.Compose, sample: Sample, seed: int) -> Sample:
    """Apply the pipeline to an image and its instances with a reproducible seed.

    Args:
        pipeline: from `build_train_pipeline`; boxes are transformed when it has bbox params.
        sample: image, boxes (absolute xyxy pixels) and optional masks.
        seed: per-sample seed; the same seed gives the same augmentation.

    Returns:
        The augmented sample. With boxes transformed, instances albumentations dropped (outside
        the image) are removed from every per-instance array; with masks, boxes are still the
        old ones (call `Sample.with_boxes_from_masks`).
    """
    seed_pipeline(pipeline, seed)
    inputs: dict[str, np.ndarray] = {"image": sample.image}
    has_masks = sample.masks is not None and sample.num_instances > 0
    if has_masks:
        inputs["masks"] = sample.masks  # type: ignore[assignment]
    transform_boxes = pipeline.processors.get("bboxes") is not None
    if transform_boxes:
        inputs["bboxes"] = sample.boxes_xyxy.reshape(-1, 4)
        inputs[_INSTANCE_INDEX] = np.arange(sample.num_instances)
    outputs = pipeline(**inputs)
    augmented = replace(
        sample,
        image=np.ascontiguousarray(outputs["image"]),
        masks=np.asarray(outputs["masks"], dtype=np.uint8) if has_masks else sample.masks,
    )
    if not transform_boxes:
        return augmented
    kept = np.asarray(outputs[_INSTANCE_INDEX], dtype=np.int64).reshape(-1)
    boxes = np.asarray(outputs["bboxes"], dtype=np.float32).reshape(-1, 4)
    return replace(augmented.select(kept), boxes_xyxy=boxes)
