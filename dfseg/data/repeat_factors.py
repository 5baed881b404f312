"""Repeat-factor sampling (LVIS, Gupta et al. 2019) for long-tailed datasets.

Each class c gets r(c) = max(1, sqrt(t / f(c))), f(c) the fraction of training images that
contain c; an image is repeated r(image) = max over its classes (1 for a background) times per
epoch. Fractional repeats are drawn afresh each epoch, with the epoch length fixed (so the
schedule's step count holds): floor(r) copies of every image, plus round(sum(frac(r))) extra
copies drawn without replacement with probability proportional to frac(r).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def repeat_factors(
    label_sets: Sequence[np.ndarray], num_classes: int, threshold: float
) -> np.ndarray:
    """[N] float64 repeat factor per image (>= 1).

    Args:
        label_sets: per image, the class ids present (repeats allowed; empty: background).
        num_classes: C.
        threshold: t; classes in a smaller fraction of images than t are repeated.
    """
    present = [np.unique(np.asarray(labels, dtype=np.int64)) for labels in label_sets]
    counts = np.zeros(num_classes, dtype=np.float64)
    for classes in present:
        counts[classes] += 1
    frequency = counts / max(1, len(present))
    with np.errstate(divide="ignore"):
        per_class = np.maximum(1.0, np.sqrt(threshold / np.where(frequency > 0, frequency, np.inf)))
    return np.array([per_class[c].max() if len(c) else 1.0 for c in present], dtype=np.float64)


def repeated_length(factors: np.ndarray) -> int:
    """Samples per epoch with these factors: sum of floors plus the rounded fractional mass."""
    whole = np.floor(factors)
    return int(whole.sum() + round(float((factors - whole).sum())))


def repeat_indices(
    indices: np.ndarray, factors: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """`indices` with each repeated by its factor for one epoch (see the module docstring).

    Args:
        indices: [M] image indices.
        factors: [M] their repeat factors.
        rng: this epoch's generator.

    Returns:
        [repeated_length(factors)] indices, grouped by image (shuffle afterwards).
    """
    whole = np.floor(factors).astype(np.int64)
    fraction = factors - whole
    extra = round(float(fraction.sum()))
    repeated = np.repeat(indices, whole)
    if extra:
        chosen = rng.choice(len(indices), size=extra, replace=False, p=fraction / fraction.sum())
        repeated = np.concatenate([repeated, indices[np.sort(chosen)]])
    return repeated
