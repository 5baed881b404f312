"""Two-image augmentations: MixUp (blend two images, keep both sets of instances) and
copy-paste (paste another image's instance pixels, with their masks, over this one).

Both take two `Sample`s already in the same input space (the same height and width) and return
one; they run before the single-image augmentations, so those move the two images' instances
together. These are the "dense one-to-one" augmentations of DEIM: more objects per training image
give a one-to-one matcher more positives to learn from.
"""

from __future__ import annotations

import numpy as np

from dfseg.data.sample import Sample, concatenate_samples


def _check_same_space(base: Sample, other: Sample) -> None:
    if base.hw != other.hw:
        raise ValueError(f"the two samples differ in size: {base.hw} and {other.hw}")


def mixup(base: Sample, other: Sample, weight: float) -> Sample:
    """`weight * base + (1 - weight) * other`, pixel by pixel, with the instances of both.

    Args:
        base: the sample being built (its image weighs `weight`).
        other: a second sample in the same input space.
        weight: blend weight of `base` in [0, 1] (DEIM draws it in [0.45, 0.55]).
    """
    _check_same_space(base, other)
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"the mixup weight must be in [0, 1], got {weight}")
    blended = base.image.astype(np.float32) * weight + other.image.astype(np.float32) * (1 - weight)
    image = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return concatenate_samples(image, [base, other])


def copy_paste(base: Sample, other: Sample, rng: np.random.Generator, fraction: float) -> Sample:
    """Paste a random part of `other`'s masked instances, pixels and masks, over `base`.

    Each of `other`'s instances with a real mask (not box-only, not crowd) is picked with
    probability `fraction`, at least one when there is any. The picked pixels replace `base`'s,
    and `base`'s masks lose what is now covered; an instance covered entirely ends with an empty
    mask (the dataset drops those when it recomputes boxes from masks). Without masks (detect),
    or when `other` has no masked instance, `base` comes back unchanged.

    Args:
        base: the sample being built.
        other: a second sample in the same input space, with masks.
        rng: picks the instances.
        fraction: probability that each candidate instance is pasted.
    """
    _check_same_space(base, other)
    if base.masks is None or other.masks is None:
        return base
    candidates = np.flatnonzero(other.has_mask & ~other.iscrowd)
    if not len(candidates):
        return base
    picked = candidates[rng.random(len(candidates)) < fraction]
    if not len(picked):
        picked = candidates[[int(rng.integers(len(candidates)))]]
    pasted = other.select(picked)
    assert pasted.masks is not None  # selected from a sample with masks
    covered = np.asarray(pasted.masks.any(axis=0))  # [H, W] bool
    image = base.image.copy()
    image[covered] = other.image[covered]
    occluded = Sample(
        image=image,
        labels=base.labels,
        boxes_xyxy=base.boxes_xyxy,
        masks=base.masks * ~covered[None],
        has_mask=base.has_mask,
        instance_keys=base.instance_keys,
        iscrowd=base.iscrowd,
    )
    return concatenate_samples(image, [occluded, pasted])
