"""Ground-truth statistics: instances per class, where boxes are, how big they are."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dfseg.metrics.inputs import ImageGroundTruth
from dfseg.metrics.plots.canvas import new_figure, save_png

FEW_CLASSES = 20  # more than this: horizontal bars, one readable row per class


def _box_geometry(ground_truths: Sequence[ImageGroundTruth]) -> tuple[np.ndarray, bool]:
    """[N, 4] (centre x, centre y, width, height) of non-crowd boxes and whether they are
    normalised by the image size (only when every image knows its size)."""
    normalised = all(gt.image_size is not None for gt in ground_truths)
    rows = []
    for gt in ground_truths:
        boxes = gt.boxes_xyxy[~gt.crowd]  # [n, 4] xyxy pixels
        geometry = np.stack(
            [(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2,
             boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1,
        )  # fmt: skip
        if normalised and gt.image_size is not None:
            height, width = gt.image_size
            geometry = geometry / np.array([width, height, width, height], dtype=np.float64)
        rows.append(geometry)
    return (np.concatenate(rows) if rows else np.zeros((0, 4))), normalised


def plot_label_distribution(
    ground_truths: Sequence[ImageGroundTruth], class_names: Sequence[str], path: str | Path
) -> Path:
    """Four panels: instances per class, box centres, box sizes, objects per image.

    Coordinates are normalised to [0, 1] when every image has `image_size`, pixels otherwise.
    Crowd regions are left out.
    """
    counts = np.zeros(len(class_names), np.int64)
    for gt in ground_truths:
        counts += np.bincount(gt.labels[~gt.crowd], minlength=len(class_names))[: len(class_names)]
    geometry, normalised = _box_geometry(ground_truths)
    unit = "(normalised)" if normalised else "(pixels)"
    many = len(class_names) > FEW_CLASSES  # then a row per class, readable with 80 classes
    if many:
        figure = new_figure(15, 5 + 0.22 * len(class_names))
        grid = figure.add_gridspec(2, 3, height_ratios=[0.22 * len(class_names), 5])
        bars = figure.add_subplot(grid[0, :])
        centres, sizes, per_image = (figure.add_subplot(grid[1, k]) for k in range(3))
    else:
        figure = new_figure(12, 9)
        (bars, centres), (sizes, per_image) = figure.subplots(2, 2)
    positions = np.arange(len(class_names))
    if many:
        bars.barh(positions, counts, color="tab:blue")
        bars.set_yticks(positions, list(class_names), fontsize="small")
        bars.set_ylim(len(class_names) - 0.5, -0.5)
        bars.set_xlabel("instances")
    else:
        bars.bar(positions, counts, color="tab:blue")
        bars.set_xticks(positions, list(class_names), rotation=90, fontsize="small")
        bars.set_ylabel("instances")
    bars.set_title(f"{int(counts.sum())} instances in {len(ground_truths)} images")
    if len(geometry):
        bins = int(np.clip(np.sqrt(len(geometry)), 10, 50))  # coarse bins for small datasets
        centres.hist2d(geometry[:, 0], geometry[:, 1], bins=bins, cmap="Blues", cmin=1)
        sizes.hist2d(geometry[:, 2], geometry[:, 3], bins=bins, cmap="Blues", cmin=1)
    centres.invert_yaxis()
    centres.set(xlabel=f"x {unit}", ylabel=f"y {unit}", title="box centres")
    sizes.set(xlabel=f"width {unit}", ylabel=f"height {unit}", title="box sizes")
    objects = np.array([int((~gt.crowd).sum()) for gt in ground_truths])
    edges = [k - 0.5 for k in range(int(objects.max(initial=0)) + 2)]  # one bin per count
    per_image.hist(objects, bins=edges, color="tab:green")
    per_image.set(xlabel="objects per image", ylabel="images", title="objects per image")
    return save_png(figure, path)
