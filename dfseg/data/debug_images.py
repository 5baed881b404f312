"""Debug images: what the model is fed, drawn with boxes, class names and mask overlays."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor

from dfseg.ops.boxes import box_cxcywh_to_xyxy

_MASK_ALPHA = 0.45


def class_colour(label: int) -> tuple[int, int, int]:
    """A distinct, stable BGR colour per class id (golden-angle hues)."""
    hue = int((label * 137.508) % 180)
    hsv = np.array([[[hue, 220, 255]]], dtype=np.uint8)
    blue, green, red = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(blue), int(green), int(red)


def _label_text(label: int, class_names: Sequence[str]) -> str:
    return class_names[label] if 0 <= label < len(class_names) else f"class {label}"


def draw_target(
    image_chw: Tensor, target: dict[str, Any], class_names: Sequence[str]
) -> np.ndarray:
    """One network input with its target drawn on it.

    Args:
        image_chw: [3, H, W] float RGB in [0, 1].
        target: dict with `labels` [N], `boxes` [N, 4] normalised cxcywh and optionally
            `masks` [N, H, W].
        class_names: id -> name.

    Returns:
        [H, W, 3] uint8 BGR drawing.
    """
    rgb = (image_chw.detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0)
    canvas = cv2.cvtColor(np.ascontiguousarray(rgb.cpu().numpy()), cv2.COLOR_RGB2BGR)
    height, width = canvas.shape[:2]
    labels = target["labels"].cpu().numpy().astype(int)
    masks = target.get("masks")
    if masks is not None and len(masks):
        overlay = canvas.copy()
        for label, mask in zip(labels, masks.cpu().numpy().astype(bool), strict=True):
            overlay[mask] = class_colour(label)
        canvas = cv2.addWeighted(overlay, _MASK_ALPHA, canvas, 1 - _MASK_ALPHA, 0)
    scale = torch.tensor([width, height, width, height], dtype=torch.float32)
    boxes_xyxy = box_cxcywh_to_xyxy(target["boxes"].detach().cpu().float()) * scale  # [N, 4]
    boxes = boxes_xyxy.round().int().tolist()
    for label, (x1, y1, x2, y2) in zip(labels, boxes, strict=True):
        colour = class_colour(label)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 1, cv2.LINE_AA)
        text = _label_text(label, class_names)
        (text_w, text_h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
        top = max(y1 - text_h - 3, 0)
        cv2.rectangle(canvas, (x1, top), (x1 + text_w + 2, top + text_h + 3), colour, -1)
        cv2.putText(
            canvas,
            text,
            (x1 + 1, top + text_h + 1),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    return canvas


def save_debug_images(
    images: Tensor,
    targets: Sequence[dict[str, Any]],
    out_dir: Path,
    class_names: Sequence[str],
    max_images: int,
    prefix: str = "train_sample",
) -> list[Path]:
    """Draw up to `max_images` samples of a batch and write them as JPEG files.

    Args:
        images: [B, 3, H, W] float RGB in [0, 1] (a collated batch).
        targets: B target dicts (see `draw_target`).
        out_dir: folder to write to (created if missing).
        class_names: id -> name.
        max_images: how many samples to draw (0: none).
        prefix: file name prefix; files are `<prefix>_<i>.jpg` with i counting from 0.

    Returns:
        The paths written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for number, (image, target) in enumerate(zip(images, targets, strict=True)):
        if number >= max_images:
            break
        path = out_dir / f"{prefix}_{number}.jpg"
        if not cv2.imwrite(str(path), draw_target(image, target, class_names)):
            raise OSError(f"could not write the debug image {path}")
        written.append(path)
    return written
