"""A generated video of moving shapes with ground-truth tracks, for tracking tests and video
benchmarks.

Shapes move at constant velocity and bounce off the frame's edges; they are drawn in a fixed
order, so when two cross the later one hides part of the earlier one (the occlusion trackers
must survive). The ground truth follows MOTChallenge: one row per object and frame with the
object's full box, whether hidden or not, and its visible fraction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dfseg.data.synthetic_shapes import SHAPES, draw_background
from dfseg.ops.masks import masks_to_boxes_xyxy, polygon_to_mask

MOT_GT_FILE = "gt.txt"


@dataclass(frozen=True)
class TrackTruth:
    """One object in one frame: `frame` (1-based, as MOTChallenge), `track_id` (1-based), class
    id, full box xyxy in pixels, visible fraction in [0, 1]."""

    frame: int
    track_id: int
    label: int
    box_xyxy: tuple[float, float, float, float]
    visibility: float


@dataclass
class _Mover:
    shape: str
    label: int
    colour: tuple[int, int, int]
    size: float
    position: np.ndarray  # [2] centre (x, y)
    velocity: np.ndarray  # [2] pixels per frame
    angle: float


def render_tracking_video(
    path: Path,
    num_frames: int = 90,
    image_size: tuple[int, int] = (240, 320),
    num_objects: int = 4,
    classes: tuple[str, ...] = ("circle", "square"),
    fps: float = 30.0,
    speed: float = 3.0,
    seed: int = 0,
) -> list[TrackTruth]:
    """Write an mp4 (mp4v) of moving shapes to `path` and return its ground truth.

    Args:
        path: the video file (.mp4), overwritten.
        num_frames: frames to render.
        image_size: (height, width).
        num_objects: shapes, each a track for the whole video.
        classes: shape names (see `SHAPES`); object i has class i % len(classes).
        fps: the file's frame rate.
        speed: mean pixels per frame each shape moves.
        seed: the same arguments give the same frames and truth.
    """
    height, width = image_size
    rng = np.random.default_rng(seed)
    background = draw_background(rng, height, width)
    movers = [_new_mover(rng, index, classes, height, width, speed) for index in range(num_objects)]
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    truth: list[TrackTruth] = []
    try:
        for frame in range(1, num_frames + 1):
            image, masks = background.copy(), []
            for mover in movers:
                outline = SHAPES[mover.shape](mover.position, mover.size, mover.angle)
                mask = polygon_to_mask([outline.astype(np.float32)], height, width).astype(bool)
                image[mask] = mover.colour
                masks.append(mask)
            truth += _frame_truth(frame, movers, masks)
            writer.write(image)
            for mover in movers:
                _move(mover, height, width)
    finally:
        writer.release()
    return truth


def _new_mover(
    rng: np.random.Generator,
    index: int,
    classes: tuple[str, ...],
    height: int,
    width: int,
    speed: float,
) -> _Mover:
    size = float(rng.uniform(0.12, 0.2) * min(height, width))
    margin = size / 2 + 1
    hue = int(180 * index / 7) % 180  # distinct, saturated colours
    colour = cv2.cvtColor(np.array([[[hue, 230, 240]]], np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
    direction = rng.uniform(0, 2 * np.pi)
    magnitude = speed * rng.uniform(0.6, 1.4)
    return _Mover(
        shape=classes[index % len(classes)],
        label=index % len(classes),
        colour=tuple(int(c) for c in colour),  # type: ignore[arg-type]
        size=size,
        position=rng.uniform([margin, margin], [width - margin, height - margin]),
        velocity=magnitude * np.array([np.cos(direction), np.sin(direction)]),
        angle=float(rng.uniform(0, np.pi)),
    )


def _move(mover: _Mover, height: int, width: int) -> None:
    mover.position = mover.position + mover.velocity
    half = mover.size / 2
    for axis, limit in ((0, width), (1, height)):
        if mover.position[axis] < half or mover.position[axis] > limit - half:
            mover.velocity[axis] = -mover.velocity[axis]
            mover.position[axis] = float(np.clip(mover.position[axis], half, limit - half))


def _frame_truth(frame: int, movers: list[_Mover], masks: list[np.ndarray]) -> list[TrackTruth]:
    boxes = masks_to_boxes_xyxy(np.stack(masks))  # [N, 4] full extent of each shape
    covered = np.zeros_like(masks[0])
    visible = [0.0] * len(masks)
    for index in range(len(masks) - 1, -1, -1):  # later shapes are drawn on top
        area = max(int(masks[index].sum()), 1)
        visible[index] = float((masks[index] & ~covered).sum()) / area
        covered |= masks[index]
    return [
        TrackTruth(
            frame,
            index + 1,
            mover.label,
            tuple(float(v) for v in boxes[index]),  # type: ignore[arg-type]
            round(visible[index], 4),
        )
        for index, mover in enumerate(movers)
    ]


def write_mot_ground_truth(path: Path, truth: list[TrackTruth]) -> Path:
    """MOTChallenge gt.txt: `frame,id,left,top,width,height,1,class+1,visibility` per row."""
    lines = []
    for row in truth:
        x1, y1, x2, y2 = row.box_xyxy
        lines.append(
            f"{row.frame},{row.track_id},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},"
            f"1,{row.label + 1},{row.visibility:.4f}\n"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines))
    return path
