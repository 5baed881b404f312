"""A grid of images with ground truth (green) and predictions (blue, with class and score) drawn,
masks as translucent overlays."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Patch, Rectangle

from dfseg.metrics.errors import MetricsInputError
from dfseg.metrics.inputs import ImageGroundTruth, ImagePredictions, as_predictions
from dfseg.metrics.masks import decode_rles
from dfseg.metrics.plots.canvas import new_figure, save_png
from dfseg.structures.detections import Detections

GT_COLOR = (0, 200, 0)
PRED_COLOR = (30, 100, 255)
MASK_ALPHA = 0.35


def _dense_masks(item: ImageGroundTruth | ImagePredictions, keep: np.ndarray) -> np.ndarray | None:
    """[n, H, W] bool masks of the kept rows (real ones only: box-only ground truth is drawn
    as its box), or None without masks."""
    if isinstance(item, ImageGroundTruth):
        keep = keep & item.known_masks
    if item.masks is None or not keep.any():
        return None
    if isinstance(item.masks, np.ndarray):
        return np.asarray(item.masks[keep], dtype=bool)
    return decode_rles([item.rles[i] for i in np.flatnonzero(keep)])


def _blend(image: np.ndarray, masks: np.ndarray | None, color: tuple[int, int, int]) -> None:
    """Tint `image` ([H, W, 3] float) in place where any mask is set."""
    if masks is None or len(masks) == 0:
        return
    if masks.shape[1:] != image.shape[:2]:
        raise MetricsInputError(
            f"masks are {masks.shape[1:]} but the image is {image.shape[:2]}; draw masks at the "
            "original image size"
        )
    covered = masks.any(axis=0)  # [H, W]
    image[covered] = image[covered] * (1 - MASK_ALPHA) + np.asarray(color) * MASK_ALPHA


def _draw_boxes(
    axes: Axes,
    boxes_xyxy: np.ndarray,
    color: tuple[int, int, int],
    captions: Sequence[str],
    image_hw: tuple[int, int],
) -> None:
    """Boxes, and their captions above them; a caption that would overlap one already placed
    moves down by a line (captions are ~1/22 of the image high at this figure size)."""
    rgb = tuple(c / 255 for c in color)
    line = image_hw[0] / 22
    taken: list[tuple[float, float, float]] = []  # (x1, x2, y) of placed captions
    for (x1, y1, x2, y2), caption in zip(boxes_xyxy, captions, strict=True):
        axes.add_patch(
            Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=rgb, linewidth=1.5)
        )
        if not caption:
            continue
        width = len(caption) * line * 0.45
        y = max(float(y1), line)
        while any(abs(y - ty) < line and x1 < tx2 and tx1 < x1 + width for tx1, tx2, ty in taken):
            y += line
        taken.append((float(x1), float(x1) + width, y))
        axes.text(
            x1, y, caption, color="white", fontsize="x-small", va="bottom",
            bbox={"facecolor": rgb, "edgecolor": "none", "pad": 1, "alpha": 0.8},
        )  # fmt: skip


def _draw_panel(
    axes: Axes,
    image: np.ndarray,
    gt: ImageGroundTruth,
    pred: ImagePredictions,
    class_names: Sequence[str],
    confidence_threshold: float,
) -> None:
    if image.ndim != 3 or image.shape[2] != 3:
        raise MetricsInputError(f"images must be RGB [H, W, 3] uint8, got shape {image.shape}")
    keep = pred.scores >= confidence_threshold  # [M]
    canvas = image.astype(np.float64)
    _blend(canvas, _dense_masks(gt, np.ones(len(gt), bool)), GT_COLOR)
    _blend(canvas, _dense_masks(pred, keep), PRED_COLOR)
    axes.imshow(canvas.clip(0, 255).astype(np.uint8))
    hw = (image.shape[0], image.shape[1])
    _draw_boxes(axes, gt.boxes_xyxy, GT_COLOR, [""] * len(gt), hw)
    captions = [
        f"{_name(class_names, int(label))} {score:.2f}"
        for label, score in zip(pred.labels[keep], pred.scores[keep], strict=True)
    ]
    _draw_boxes(axes, pred.boxes_xyxy[keep], PRED_COLOR, captions, hw)
    axes.set_axis_off()


def _name(class_names: Sequence[str], label: int) -> str:
    return class_names[label] if 0 <= label < len(class_names) else str(label)


def plot_prediction_grid(
    images: Sequence[np.ndarray],
    ground_truths: Sequence[ImageGroundTruth],
    predictions: Sequence[ImagePredictions | Detections],
    class_names: Sequence[str],
    path: str | Path,
    confidence_threshold: float = 0.25,
    columns: int | None = None,
    titles: Sequence[str] | None = None,
) -> Path:
    """Draw images side by side with their ground truth and predictions.

    Args:
        images: RGB uint8 [H, W, 3] arrays at their original size.
        ground_truths: per image, in the same pixels (boxes xyxy, masks [N, H, W] or RLE).
        predictions: per image, same pixels; only those scored >= `confidence_threshold` drawn.
        class_names: id -> name for the captions.
        path: PNG to write.
        confidence_threshold: minimum score of drawn predictions.
        columns: grid width (default: about square).
        titles: optional caption per image (e.g. file names).
    """
    preds = as_predictions(predictions)
    if not len(images) == len(ground_truths) == len(preds) or not images:
        raise MetricsInputError(
            f"need the same non-zero number of images ({len(images)}), ground truths "
            f"({len(ground_truths)}) and predictions ({len(preds)})"
        )
    columns = columns or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    figure = new_figure(4 * columns, 4 * rows)
    grid = np.atleast_1d(figure.subplots(rows, columns, squeeze=False).ravel())
    for index, axes in enumerate(grid):
        if index >= len(images):
            axes.set_axis_off()
            continue
        _draw_panel(
            axes,
            images[index],
            ground_truths[index],
            preds[index],
            class_names,
            confidence_threshold,
        )
        if titles is not None:
            axes.set_title(titles[index], fontsize="small")
    legend = [
        Patch(color=_rgb(GT_COLOR), label="ground truth"),
        Patch(color=_rgb(PRED_COLOR), label=f"prediction (score >= {confidence_threshold:.2f})"),
    ]
    figure.legend(handles=legend, loc="upper center", ncol=2, frameon=False, fontsize="medium")
    return save_png(figure, path)


def _rgb(color: tuple[int, int, int]) -> tuple[float, float, float]:
    """An 0-255 RGB colour as matplotlib's 0-1 floats."""
    return (color[0] / 255, color[1] / 255, color[2] / 255)
