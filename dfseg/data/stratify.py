"""Seeded multi-label stratified assignment of images to splits (greedy iterative stratification).

Images with objects are placed class by class, rarest class first (Sechidis et al., 2011): each
image goes to the split that still wants the most images of that class. Afterwards every split
with a ratio > 0 is given at least one image of each class that has enough images (one per such
split), moving an image from the split that holds the most. Background images fill the splits up
to their target sizes. Deterministic for a given seed and input order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def assign_splits(
    label_sets: Sequence[np.ndarray], num_classes: int, ratios: Sequence[float], seed: int
) -> tuple[np.ndarray, list[int]]:
    """Split index for every image.

    Args:
        label_sets: per image, the class ids present (any order, repeats allowed); empty for a
            background image.
        num_classes: C; ids must be < C.
        ratios: fraction of images per split (>= 0, summing to 1); splits with 0 get nothing.
        seed: seeds the order in which images are visited and ties are broken.

    Returns:
        ([N] int64 split index per image, class ids too rare to reach every split with ratio > 0).
    """
    rng = np.random.default_rng(seed)
    ratios_array = np.asarray(ratios, dtype=np.float64)  # [S]
    present = [np.unique(np.asarray(s, dtype=np.int64)) for s in label_sets]
    assignment = np.full(len(present), -1, dtype=np.int64)  # [N]
    labelled = [i for i, s in enumerate(present) if len(s)]
    _stratify(present, labelled, num_classes, ratios_array, rng, assignment)
    too_rare = _ensure_every_class_everywhere(present, num_classes, ratios_array, assignment)
    backgrounds = [i for i, s in enumerate(present) if not len(s)]
    _fill_with_backgrounds(backgrounds, ratios_array, rng, assignment)
    _honour_split_sizes(present, num_classes, ratios_array, assignment)
    return assignment, too_rare


def _stratify(
    present: list[np.ndarray],
    labelled: list[int],
    num_classes: int,
    ratios: np.ndarray,
    rng: np.random.Generator,
    assignment: np.ndarray,
) -> None:
    active = ratios > 0  # [S]
    images_of_class: list[list[int]] = [[] for _ in range(num_classes)]
    for i in rng.permutation(np.asarray(labelled, dtype=np.int64)).tolist():
        for c in present[i]:
            images_of_class[c].append(i)
    remaining = np.array([len(images) for images in images_of_class], dtype=np.int64)  # [C]
    wanted = ratios[:, None] * remaining[None, :].astype(np.float64)  # [S, C]
    wanted_total = ratios * len(labelled)  # [S]
    while (remaining > 0).any():
        rarest = int(np.argmin(np.where(remaining > 0, remaining, np.iinfo(np.int64).max)))
        for i in images_of_class[rarest]:
            if assignment[i] >= 0:
                continue
            split = _pick_split(wanted[:, rarest], wanted_total, active, rng)
            assignment[i] = split
            wanted[split, present[i]] -= 1
            wanted_total[split] -= 1
            remaining[present[i]] -= 1


def _pick_split(
    wanted_of_class: np.ndarray,
    wanted_total: np.ndarray,
    active: np.ndarray,
    rng: np.random.Generator,
) -> int:
    """The active split wanting this class most; ties: most wanted overall, then random."""
    score = np.where(active, wanted_of_class, -np.inf)
    best = np.flatnonzero(score == score.max())
    if len(best) > 1:
        totals = wanted_total[best]
        best = best[totals == totals.max()]
    return int(best[0] if len(best) == 1 else rng.choice(best))


def _ensure_every_class_everywhere(
    present: list[np.ndarray], num_classes: int, ratios: np.ndarray, assignment: np.ndarray
) -> list[int]:
    active = np.flatnonzero(ratios > 0)
    holders = np.zeros((len(ratios), num_classes), dtype=np.int64)  # [S, C] images with class
    for i, classes in enumerate(present):
        if assignment[i] >= 0:
            holders[assignment[i], classes] += 1
    too_rare = []
    for c in range(num_classes):
        total = int(holders[:, c].sum())
        if total == 0:
            continue
        if total < len(active):
            too_rare.append(c)
            continue
        for split in active:
            if holders[split, c] == 0:
                _move_one(c, int(split), present, holders, assignment)
    return too_rare


def _move_one(
    c: int, target: int, present: list[np.ndarray], holders: np.ndarray, assignment: np.ndarray
) -> None:
    """Move the image with class c that costs its split the least into `target`."""
    donor = int(np.argmax(holders[:, c]))
    candidates = [i for i, s in enumerate(present) if assignment[i] == donor and c in s]
    # prefer an image whose classes all stay present in the donor; then the fewest classes
    candidates.sort(key=lambda i: (int((holders[donor, present[i]] < 2).any()), len(present[i]), i))
    chosen = candidates[0]
    assignment[chosen] = target
    holders[donor, present[chosen]] -= 1
    holders[target, present[chosen]] += 1


def _fill_with_backgrounds(
    backgrounds: list[int], ratios: np.ndarray, rng: np.random.Generator, assignment: np.ndarray
) -> None:
    total = len(assignment)
    targets = largest_remainder(ratios, total)  # [S]
    counts = np.bincount(assignment[assignment >= 0], minlength=len(ratios))  # [S]
    active = ratios > 0
    for i in rng.permutation(np.asarray(backgrounds, dtype=np.int64)).tolist():
        deficit = np.where(active, targets - counts, np.iinfo(np.int64).min)
        split = int(np.argmax(deficit))
        assignment[i] = split
        counts[split] += 1


def _honour_split_sizes(
    present: list[np.ndarray], num_classes: int, ratios: np.ndarray, assignment: np.ndarray
) -> None:
    """Move images from splits above their size (`largest_remainder` of the ratios) to splits
    below it until every split has its size. The image moved is the one whose move takes the
    fewest classes' last copy away from the split it leaves (backgrounds cost nothing), then
    the one with the fewest classes. The ratios win over having every class in every split:
    putting a rare class in a 10% test split must not make that split 25% of the data (the
    split report then names the classes a split lacks)."""
    targets = largest_remainder(ratios, len(assignment))  # [S]
    holders = np.zeros((len(ratios), num_classes), dtype=np.int64)  # [S, C]
    for i, classes in enumerate(present):
        holders[assignment[i], classes] += 1
    counts = np.bincount(assignment, minlength=len(ratios))  # [S]
    while (counts != targets).any():
        over, under = int(np.argmax(counts - targets)), int(np.argmin(counts - targets))
        members = np.flatnonzero(assignment == over).tolist()
        _, _, chosen = min(
            (int((holders[over, present[i]] < 2).sum()), len(present[i]), i) for i in members
        )
        assignment[chosen] = under
        holders[over, present[chosen]] -= 1
        holders[under, present[chosen]] += 1
        counts[over] -= 1
        counts[under] += 1


def largest_remainder(ratios: np.ndarray, total: int) -> np.ndarray:
    """Integer counts proportional to `ratios` that add up to `total` (Hamilton's method)."""
    exact = np.asarray(ratios, dtype=np.float64) * total  # [S]
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - int(counts.sum())]] += 1
    return counts
