"""The error gallery: for every image with errors, one picture per error type it has, each showing
EVERY false positive and false negative of that image (never one error per file overwriting the
last), filed under `<gallery>/<error type>/`.

Colours (BGR) name the error type; true positives are thin green boxes for context; false
negatives are dashed. Each picture gets a banner with the image name and its error counts and a
legend of the colours; images smaller than `MIN_SIDE` are drawn upscaled so captions stay
readable, and captions are moved apart where they would overlap.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dfseg.analysis.errors.tide import (
    ATTRIBUTED,
    ERROR_TYPES,
    MISSED,
    PREDICTION_OUTCOMES,
    TRUE_POSITIVE,
    ErrorCases,
)
from dfseg.metrics import ImageGroundTruth, ImagePredictions
from dfseg.metrics.masks import decode_rles

TYPE_COLORS_BGR: dict[str, tuple[int, int, int]] = {
    "classification": (0, 0, 230),  # red
    "localization": (0, 165, 255),  # orange
    "both": (180, 0, 180),  # purple
    "duplicate": (230, 200, 0),  # cyan-blue
    "background": (255, 60, 60),  # blue
    "missed": (0, 230, 230),  # yellow
    "attributed": (0, 200, 255),  # amber: not found, blamed on a cls/loc error
}
SHORT_NAMES = {
    "classification": "cls", "localization": "loc", "both": "both", "duplicate": "dupe",
    "background": "bkg",
}  # fmt: skip
"""TIDE's short names, for captions."""
TRUE_POSITIVE_BGR = (60, 180, 60)
MASK_ALPHA = 0.35
JPEG_QUALITY = 90
MIN_SIDE = 640  # smaller images are upscaled to this longer side for drawing


@dataclass(frozen=True)
class GalleryImage:
    """One written picture: which image, which error type folder, the file."""

    image_index: int
    error_type: str
    path: Path


def write_gallery(
    cases: ErrorCases,
    ground_truths: Sequence[ImageGroundTruth],
    predictions: Sequence[ImagePredictions],
    image_paths: Sequence[Path],
    class_names: Sequence[str],
    out_dir: Path,
    limit: int | None = None,
) -> list[GalleryImage]:
    """Draw the gallery.

    Args:
        cases: `classify_errors` of exactly these ground truths and predictions.
        ground_truths, predictions: per image, original pixels.
        image_paths: per image, the file to draw on.
        class_names: id -> name.
        out_dir: the gallery folder (one sub-folder per error type is created).
        limit: at most this many images (those with the most errors first); None: all.

    Returns:
        The pictures written, in image order.
    """
    per_image = image_error_counts(cases, len(image_paths))  # [I, T]
    images = np.flatnonzero(per_image.sum(1))
    if limit is not None:
        images = np.sort(images[np.argsort(-per_image[images].sum(1), kind="stable")][:limit])
    written = []
    for image in images.tolist():
        picture = _draw_image(
            cases, int(image), ground_truths[image], predictions[image], image_paths[image],
            class_names, per_image[image],
        )  # fmt: skip
        name = f"{image:05d}_{Path(image_paths[image]).stem}.jpg"
        for type_index in np.flatnonzero(per_image[image]):
            error_type = ERROR_TYPES[type_index]
            path = out_dir / error_type / name
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), picture, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            written.append(GalleryImage(int(image), error_type, path))
    return written


def image_error_counts(cases: ErrorCases, num_images: int) -> np.ndarray:
    """[I, T] int64 number of cases of each error type (`ERROR_TYPES` order) per image."""
    counts = np.zeros((num_images, len(ERROR_TYPES)), np.int64)
    for column, error_type in enumerate(ERROR_TYPES):
        where = cases.gt_image if error_type == "missed" else cases.pred_image
        counts[:, column] = np.bincount(where[cases.error_mask(error_type)], minlength=num_images)[
            :num_images
        ]
    return counts


def _draw_image(
    cases: ErrorCases,
    image: int,
    gt: ImageGroundTruth,
    pred: ImagePredictions,
    path: Path,
    class_names: Sequence[str],
    counts: np.ndarray,
) -> np.ndarray:
    """One picture with every error of the image drawn ([H', W, 3] BGR uint8, banner on top)."""
    canvas = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if canvas is None:
        canvas = np.full((*_image_hw(gt, pred), 3), 114, np.uint8)  # unreadable: draw on grey
    zoom = max(1.0, MIN_SIDE / max(canvas.shape[:2]))
    masks_hw = canvas.shape[:2]
    if zoom > 1:
        size = (round(canvas.shape[1] * zoom), round(canvas.shape[0] * zoom))
        canvas = cv2.resize(canvas, size, interpolation=cv2.INTER_NEAREST)
    line = max(1, round(max(canvas.shape[:2]) / 400))
    captions = _Captions()
    in_image = cases.pred_image == image
    for flat in np.flatnonzero(in_image & (cases.pred_outcome == TRUE_POSITIVE)):
        box = pred.boxes_xyxy[cases.pred_row[flat]] * zoom
        _box(canvas, box, TRUE_POSITIVE_BGR, line, dashed=False)
    gt_here = np.flatnonzero((cases.gt_image == image) & _unfound(cases))
    for flat in gt_here:
        row = int(cases.gt_row[flat])
        kind = "missed" if cases.gt_outcome[flat] == MISSED else "attributed"
        _mask(canvas, gt, row, TYPE_COLORS_BGR[kind], masks_hw)
        _box(canvas, gt.boxes_xyxy[row] * zoom, TYPE_COLORS_BGR[kind], line, dashed=True)
        text = f"FN {_name(class_names, gt.labels[row])}"
        captions.place(canvas, gt.boxes_xyxy[row] * zoom, text, TYPE_COLORS_BGR[kind], line, True)
    for flat in np.flatnonzero(in_image & cases.false_positive):
        row = int(cases.pred_row[flat])
        kind = PREDICTION_OUTCOMES[cases.pred_outcome[flat]]
        color = TYPE_COLORS_BGR[kind]
        _mask(canvas, pred, row, color, masks_hw)
        _box(canvas, pred.boxes_xyxy[row] * zoom, color, line + 1, dashed=False)
        text = f"{SHORT_NAMES[kind]} {_name(class_names, pred.labels[row])} {pred.scores[row]:.2f}"
        captions.place(canvas, pred.boxes_xyxy[row] * zoom, text, color, line, False)
    legend = _legend(canvas.shape[1], counts, bool(gt_here.size))
    return _with_banner(np.concatenate([legend, canvas]), Path(path).name, counts)


def _unfound(cases: ErrorCases) -> np.ndarray:
    return (cases.gt_outcome == MISSED) | (cases.gt_outcome == ATTRIBUTED)


def _image_hw(gt: ImageGroundTruth, pred: ImagePredictions) -> tuple[int, int]:
    if gt.image_size is not None:
        return gt.image_size
    boxes = np.concatenate([gt.boxes_xyxy, pred.boxes_xyxy])
    return (int(boxes[:, 3].max(initial=64)) + 1, int(boxes[:, 2].max(initial=64)) + 1)


def _name(class_names: Sequence[str], label: int) -> str:
    return class_names[int(label)] if 0 <= int(label) < len(class_names) else str(label)


def _mask(
    canvas: np.ndarray,
    item: ImageGroundTruth | ImagePredictions,
    row: int,
    color: tuple[int, ...],
    image_hw: tuple[int, ...],
) -> None:
    """Tint the instance's mask semi-transparently (when it has one at the image's size; the
    canvas may be the image upscaled)."""
    if item.masks is None or (isinstance(item, ImageGroundTruth) and not item.known_masks[row]):
        return
    mask = decode_rles([item.rles[row]])[0]  # [H, W]
    if mask.shape != tuple(image_hw):
        return
    if mask.shape != canvas.shape[:2]:
        size = (canvas.shape[1], canvas.shape[0])
        mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    canvas[mask] = (canvas[mask] * (1 - MASK_ALPHA) + np.array(color) * MASK_ALPHA).astype(np.uint8)


def _box(
    canvas: np.ndarray, box_xyxy: np.ndarray, color: tuple[int, ...], width: int, dashed: bool
) -> None:
    x1, y1, x2, y2 = (round(float(v)) for v in box_xyxy)
    if not dashed:
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, width, cv2.LINE_AA)
        return
    corners = [(x1, y1), (x2, y1), (x2, y2), (x1, y2), (x1, y1)]
    for start, stop in itertools.pairwise(corners):
        _dashed_line(canvas, start, stop, color, width)


def _dashed_line(
    canvas: np.ndarray,
    start: tuple[int, int],
    stop: tuple[int, int],
    color: tuple[int, ...],
    width: int,
) -> None:
    dash = max(4, 4 * width)
    length = float(np.hypot(stop[0] - start[0], stop[1] - start[1]))
    points = np.linspace(start, stop, max(2, int(length // dash) + 1)).round().astype(int)
    for p, q in zip(points[:-1:2], points[1::2], strict=False):
        cv2.line(canvas, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), color, width, cv2.LINE_AA)


class _Captions:
    """Captions on filled strips: above the box (predictions) or inside its bottom (objects), so
    that a false positive and the object it points at do not hide each other's caption; a
    caption that would cover one already drawn moves down (or up) until it is free."""

    def __init__(self) -> None:
        self.taken: list[tuple[int, int, int, int]] = []

    def place(
        self,
        canvas: np.ndarray,
        box_xyxy: np.ndarray,
        text: str,
        color: tuple[int, ...],
        line: int,
        below: bool,
    ) -> None:
        scale = 0.4 * line
        (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        strip = height + baseline
        x = int(np.clip(box_xyxy[0], 0, max(0, canvas.shape[1] - width)))
        y = int(np.clip(box_xyxy[3] if below else box_xyxy[1], strip, canvas.shape[0]))
        step = strip if y + strip <= canvas.shape[0] else -strip
        for _ in range(len(self.taken) + 1):
            if not any(self._overlaps((x, y - strip, x + width, y), t) for t in self.taken):
                break
            y = int(np.clip(y + step, strip, canvas.shape[0]))
        self.taken.append((x, y - strip, x + width, y))
        cv2.rectangle(canvas, (x, y - strip), (x + width, y), color, -1)
        cv2.putText(canvas, text, (x, y - baseline), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip

    @staticmethod
    def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
        return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _legend(width: int, counts: np.ndarray, has_missed: bool) -> np.ndarray:
    """A strip naming the colours: true positives, and each error type the picture shows."""
    entries = [("true positive", TRUE_POSITIVE_BGR)]
    entries += [
        (f"{name} (FP)", TYPE_COLORS_BGR[name])
        for name, count in zip(ERROR_TYPES, counts, strict=True)
        if count and name != "missed"
    ]
    if has_missed:
        entries += [("missed (FN, dashed)", TYPE_COLORS_BGR["missed"])]
        entries += [("not found, blamed on a cls/loc error", TYPE_COLORS_BGR["attributed"])]
    scale = max(0.4, width / 1600)
    (_, height), baseline = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    strip = np.full((height + baseline + 10, width, 3), 255, np.uint8)
    x = 4
    for text, color in entries:
        (text_w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        if x + height + text_w + 12 > width:
            break  # what does not fit is in the error type's folder name anyway
        cv2.rectangle(strip, (x, 4), (x + height, 4 + height), color, -1)
        cv2.putText(strip, text, (x + height + 4, 4 + height), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 0, 0), 1, cv2.LINE_AA)  # fmt: skip
        x += height + text_w + 16
    return strip


def _with_banner(canvas: np.ndarray, title: str, counts: np.ndarray) -> np.ndarray:
    """Prepend a white strip naming the image and its error counts (above the legend)."""
    parts = [f"{t} {int(n)}" for t, n in zip(ERROR_TYPES, counts, strict=True) if n]
    text = f"{title}: " + ", ".join(parts)
    scale = max(0.4, canvas.shape[1] / 1600)
    (_, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    banner = np.full((height + baseline + 8, canvas.shape[1], 3), 255, np.uint8)
    cv2.putText(banner, text, (4, height + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1,
                cv2.LINE_AA)  # fmt: skip
    return np.concatenate([banner, canvas], axis=0)
