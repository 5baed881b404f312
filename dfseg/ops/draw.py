"""Drawing detections on images: translucent masks, boxes and "name score" labels, one colour
per class (`Detections.plot`, `dfseg infer`'s annotated images and videos)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

# A qualitative palette (BGR), colour-blind friendly first; classes cycle through it.
PALETTE_BGR: tuple[tuple[int, int, int], ...] = (
    (56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207),
    (10, 249, 72), (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0),
    (168, 153, 44), (255, 194, 0), (147, 69, 52), (255, 115, 100), (236, 24, 0),
    (255, 56, 132), (133, 0, 82), (255, 56, 203), (200, 149, 255), (199, 55, 255),
)  # fmt: skip
MASK_ALPHA = 0.45


def class_colour(label: int) -> tuple[int, int, int]:
    """The BGR colour of class `label`."""
    return PALETTE_BGR[int(label) % len(PALETTE_BGR)]


def draw_detections(
    image_bgr: np.ndarray,
    boxes_xyxy: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    masks: np.ndarray | None = None,
    line_width: int | None = None,
    track_ids: np.ndarray | None = None,
) -> np.ndarray:
    """A copy of `image_bgr` ([H, W, 3] uint8) with masks, boxes and labels drawn.

    Args:
        image_bgr: the original image the detections refer to.
        boxes_xyxy: [N, 4] absolute pixels of that image; scores [N]; labels [N] class ids.
        class_names: id -> name.
        masks: [N, H, W] bool, or None.
        line_width: box line width in pixels (None: ~0.3% of the image diagonal, at least 1).
        track_ids: [N] track ids (-1: untracked), or None: tracked detections are coloured by
            id and labelled "#id name score", so an object keeps its colour across frames.
    """
    canvas = image_bgr.copy()
    height, width = canvas.shape[:2]
    thickness = line_width or max(1, round(0.003 * (height + width) / 2 * 1.4))
    ids = np.full(len(scores), -1) if track_ids is None else np.asarray(track_ids)
    colour_keys = np.where(ids >= 0, ids, np.asarray(labels))  # by track, else by class
    if masks is not None and len(masks):
        _draw_masks(canvas, masks, scores, colour_keys)
    font_scale = max(0.35, thickness / 3)
    for box, score, label, key, track_id in zip(
        boxes_xyxy, scores, labels, colour_keys, ids, strict=True
    ):
        colour = class_colour(int(key))
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness, cv2.LINE_AA)
        text = f"{class_names[int(label)]} {float(score):.2f}"
        if track_id >= 0:
            text = f"#{int(track_id)} {text}"
        _draw_label(canvas, text, (x1, y1), colour, font_scale, max(1, thickness // 2))
    return canvas


def _draw_masks(
    canvas: np.ndarray, masks: np.ndarray, scores: np.ndarray, labels: np.ndarray
) -> None:
    overlay = canvas.copy()
    # Lowest score first so the best detection's colour ends on top where masks overlap.
    for index in np.argsort(scores, kind="stable"):
        overlay[masks[index]] = class_colour(int(labels[index]))
    cv2.addWeighted(overlay, MASK_ALPHA, canvas, 1 - MASK_ALPHA, 0, dst=canvas)


def _draw_label(
    canvas: np.ndarray,
    text: str,
    corner: tuple[int, int],
    colour: tuple[int, int, int],
    font_scale: float,
    thickness: int,
) -> None:
    (text_w, text_h), baseline = cv2.getTextSize(
        text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness
    )
    x, y = corner
    top = y - text_h - baseline - 2
    if top < 0:  # no room above the box: write inside it
        top = y
    cv2.rectangle(canvas, (x, top), (x + text_w + 2, top + text_h + baseline + 2), colour, -1)
    brightness = 0.299 * colour[2] + 0.587 * colour[1] + 0.114 * colour[0]
    text_colour = (0, 0, 0) if brightness > 150 else (255, 255, 255)
    cv2.putText(
        canvas, text, (x + 1, top + text_h + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
        text_colour, thickness, cv2.LINE_AA,
    )  # fmt: skip


def draw_class_map(
    image_bgr: np.ndarray, class_map: np.ndarray, class_names: Sequence[str]
) -> np.ndarray:
    """A copy of `image_bgr` with every pixel tinted in its class's colour (a class named
    "background" is left untinted) and a legend of the classes present with their pixel shares.

    Args:
        image_bgr: [H, W, 3] uint8, the original image.
        class_map: [H, W] class id per pixel (values past the class list: untinted).
        class_names: id -> name.
    """
    canvas = image_bgr.copy()
    count = len(class_names)
    lut = np.array([class_colour(k) for k in range(count)] + [(0, 0, 0)], dtype=np.uint8)
    ids = np.minimum(class_map, count).astype(np.intp)  # past the list -> the extra entry
    tinted = np.ones(count + 1, dtype=bool)
    tinted[count] = False
    if count and class_names[0].casefold() == "background":
        tinted[0] = False
    where = tinted[ids]
    blended = cv2.addWeighted(lut[ids], MASK_ALPHA, canvas, 1 - MASK_ALPHA, 0)
    canvas[where] = blended[where]
    shares = np.bincount(ids.ravel(), minlength=count + 1)[:count] / max(ids.size, 1)
    height, width = canvas.shape[:2]
    font_scale = max(0.35, 0.0012 * (height + width) / 2 * 1.4)
    thickness = max(1, round(font_scale * 1.5))
    (_, text_h), baseline = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
    line = text_h + baseline + 4
    y = line  # a label is drawn above its corner: row i spans [i * line, (i + 1) * line)
    for k in np.argsort(-shares, kind="stable"):
        if shares[k] <= 0 or not tinted[k] or y > height:
            continue
        text = f"{class_names[k]} {100 * shares[k]:.1f}%"
        _draw_label(canvas, text, (2, y), class_colour(int(k)), font_scale, thickness)
        y += line
    return canvas
