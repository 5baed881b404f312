"""Inference outputs: annotated images, annotated videos, YOLO txt labels, crops, index masks
(semantic models) and a JSONL of detections. Each sink writes one thing; `infer` feeds every
enabled sink each frame."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

import cv2
import numpy as np

from dfseg.data.semantic import save_index_png
from dfseg.runtime.records import detection_records
from dfseg.runtime.sources import Frame
from dfseg.structures import Detections

JSONL_FILE = "predictions.jsonl"


class Sink:
    """Receives every frame with its detections; `close` finishes files."""

    def write(self, frame: Frame, detections: Detections, video: VideoInfo | None) -> None:
        """Handle one frame (`video` describes its video, None for still images)."""
        raise NotImplementedError

    def write_unreadable(self, frame: Frame) -> None:
        """Note a frame that could not be read (most sinks ignore it)."""

    def close(self) -> None:
        """Flush and close open files."""


class VideoInfo:
    """Where a frame's video is and how to write its annotated copy."""

    def __init__(self, label: str, stem: str, fps: float, size_wh: tuple[int, int]) -> None:
        self.label, self.stem, self.fps, self.size_wh = label, stem, fps, size_wh


class AnnotatedImages(Sink):
    """Annotated stills as `<out>/<name>` (video frames go to `AnnotatedVideos`)."""

    def __init__(self, out_dir: Path, line_width: int | None = None) -> None:
        self.out_dir, self.line_width = out_dir, line_width

    def write(self, frame: Frame, detections: Detections, video: VideoInfo | None) -> None:
        if video is not None or frame.image is None:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        target = self.out_dir / frame.name
        if target.suffix.lower() not in (".jpg", ".jpeg", ".png", ".bmp", ".webp"):
            target = target.with_suffix(".jpg")
        _write_image(target, detections.plot(frame.image, self.line_width))


class AnnotatedVideos(Sink):
    """Annotated videos as `<out>/<stem>.mp4` (mp4v, the source's fps and size)."""

    def __init__(self, out_dir: Path, line_width: int | None = None) -> None:
        self.out_dir, self.line_width = out_dir, line_width
        self.writers: dict[str, cv2.VideoWriter] = {}

    def write(self, frame: Frame, detections: Detections, video: VideoInfo | None) -> None:
        if video is None or frame.image is None:
            return
        writer = self.writers.get(video.label)
        if writer is None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            for other in self.writers.values():  # sources are read one after another
                other.release()
            self.writers = {}
            fourcc = cv2.VideoWriter.fourcc(*"mp4v")
            path = str(self.out_dir / f"{video.stem}.mp4")
            writer = cv2.VideoWriter(path, fourcc, video.fps, video.size_wh)
            self.writers[video.label] = writer
        writer.write(detections.plot(frame.image, self.line_width))

    def close(self) -> None:
        for writer in self.writers.values():
            writer.release()
        self.writers = {}


class YoloLabels(Sink):
    """YOLO txt per frame in `<out>/labels/`: `class cx cy w h` (normalised), or for
    segmentation `class x1 y1 x2 y2 ...` (the largest outline), `score` appended with
    `save_conf`, then the track id when tracking (Ultralytics' order). A frame without
    detections gets no file (YOLO's convention)."""

    def __init__(self, out_dir: Path, save_conf: bool, segment: bool) -> None:
        self.out_dir, self.save_conf, self.segment = out_dir / "labels", save_conf, segment

    def write(self, frame: Frame, detections: Detections, video: VideoInfo | None) -> None:
        if frame.image is None or not len(detections):
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        lines = yolo_lines(detections, self.save_conf, self.segment)
        (self.out_dir / f"{Path(frame.name).stem}.txt").write_text("".join(lines))


def yolo_lines(detections: Detections, save_conf: bool, segment: bool) -> list[str]:
    """YOLO rows of `detections` (see `YoloLabels`); segmentation rows whose mask is empty fall
    back to the box's four corners."""
    height, width = detections.image_size
    scale = np.array([width, height], dtype=np.float64)
    polygons = detections.polygons() if segment else [[] for _ in range(len(detections))]
    lines = []
    ids = detections.track_ids
    for index, (box, score, label, rings) in enumerate(
        zip(detections.boxes_xyxy, detections.scores, detections.labels, polygons, strict=True)
    ):
        x1, y1, x2, y2 = (float(v) for v in box)
        if segment:
            ring = rings[0] if rings else np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])
            values = (np.asarray(ring, np.float64) / scale).clip(0.0, 1.0).ravel()
        else:
            values = np.array([(x1 + x2) / 2 / width, (y1 + y2) / 2 / height,
                               (x2 - x1) / width, (y2 - y1) / height])  # fmt: skip
        row = f"{int(label)} " + " ".join(f"{v:.6f}" for v in values)
        row += f" {float(score):.5f}" if save_conf else ""
        lines.append(row + (f" {int(ids[index])}" if ids is not None else "") + "\n")
    return lines


class MotChallenge(Sink):
    """MOTChallenge text files of tracked videos and image sequences in `<out>/mot/`:
    `<stem>.txt` the tracks (`frame,id,left,top,width,height,score,-1,-1,-1`, frames from 1)
    and `det/<stem>.txt` every detection given to the tracker (id -1), the two files MOT tools
    (TrackEval, motmetrics, py-motmetrics' `mot16` loader) read."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir / "mot"
        self.handles: dict[str, TextIO] = {}

    def write(self, frame: Frame, detections: Detections, video: VideoInfo | None) -> None:
        if frame.image is None or detections.track_ids is None:
            return
        number = _frame_number(frame, video)
        self._write(_sequence(video), number, detections, detections.track_ids)

    def write_candidates(
        self, frame: Frame, detections: Detections, video: VideoInfo | None
    ) -> None:
        """Every detection the tracker was given for this frame (the det file)."""
        ids = np.full(len(detections), -1, dtype=np.int64)
        self._write(f"det/{_sequence(video)}", _frame_number(frame, video), detections, ids)

    def _write(self, key: str, number: int, detections: Detections, ids: np.ndarray) -> None:
        handle = self.handles.get(key)
        if handle is None:
            path = self.out_dir / f"{key}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = self.handles[key] = path.open("w", encoding="utf-8")
        for box, score, track_id in zip(detections.boxes_xyxy, detections.scores, ids, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            box_text = f"{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f}"
            handle.write(f"{number},{int(track_id)},{box_text},{float(score):.5f},-1,-1,-1\n")

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()
        self.handles = {}


def _sequence(video: VideoInfo | None) -> str:
    return video.stem if video is not None else "images"


def _frame_number(frame: Frame, video: VideoInfo | None) -> int:
    """MOT frame numbers start at 1: the video's frame (strided frames keep theirs), or the
    image's place in its sequence."""
    return (frame.index if video is not None else frame.position) + 1


class Crops(Sink):
    """Each detection cut out as `<out>/crops/<class name>/<frame name>_<i>.jpg`, its box grown
    by `padding` pixels per side (clipped to the image)."""

    def __init__(self, out_dir: Path, padding: int) -> None:
        self.out_dir, self.padding = out_dir / "crops", padding

    def write(self, frame: Frame, detections: Detections, video: VideoInfo | None) -> None:
        if frame.image is None:
            return
        height, width = frame.image.shape[:2]
        for index, (box, name) in enumerate(
            zip(detections.boxes_xyxy, detections.names, strict=True)
        ):
            x1, y1 = (max(0, int(np.floor(v)) - self.padding) for v in box[:2])
            x2 = min(width, int(np.ceil(box[2])) + self.padding)
            y2 = min(height, int(np.ceil(box[3])) + self.padding)
            if x2 <= x1 or y2 <= y1:
                continue
            folder = self.out_dir / name
            folder.mkdir(parents=True, exist_ok=True)
            _write_image(folder / f"{Path(frame.name).stem}_{index}.jpg", frame.image[y1:y2, x1:x2])


class IndexMasks(Sink):
    """Semantic models: each frame's class map as a palette PNG (pixel value = class id, VOC
    colours, what `data.format: masks` reads): stills as `<out>/masks/<stem>.png`, video frames
    as `<out>/masks/<video stem>/<frame index, 6 digits>.png`."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir / "masks"

    def write(self, frame: Frame, detections: Detections, video: VideoInfo | None) -> None:
        if frame.image is None or detections.class_map is None:
            return
        if video is None:
            target = self.out_dir / f"{Path(frame.name).stem}.png"
        else:
            target = self.out_dir / video.stem / f"{frame.index:06d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        save_index_png(target, detections.class_map)


class JsonLines(Sink):
    """`<out>/predictions.jsonl`: one line per image or frame, readable ones and not."""

    def __init__(self, out_dir: Path, segment: bool) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.handle: TextIO = (out_dir / JSONL_FILE).open("w", encoding="utf-8")
        self.segment = segment

    def write(self, frame: Frame, detections: Detections, video: VideoInfo | None) -> None:
        self.handle.write(json.dumps(frame_record(frame, detections, self.segment)) + "\n")

    def write_unreadable(self, frame: Frame) -> None:
        record = {"source": frame.path, "name": frame.name, "frame": frame.index,
                  "error": frame.error}  # fmt: skip
        self.handle.write(json.dumps(record) + "\n")

    def close(self) -> None:
        self.handle.close()


def frame_record(frame: Frame, detections: Detections, segment: bool) -> dict[str, Any]:
    """The JSONL record of one frame: source, frame index, size and detections (boxes xyxy in
    original pixels; for segmentation each detection's outlines, see `detection_records`), or
    for a semantic model `class_pixels` (pixels per class name present, most first)."""
    record: dict[str, Any] = {
        "source": frame.path,
        "name": frame.name,
        "frame": frame.index,
        "image_size": list(detections.image_size),
    }
    if detections.class_map is not None:  # semantic: pixels per class (the map is a PNG)
        record["class_pixels"] = detections.class_pixels()
        return record
    record["detections"] = detection_records(detections, "polygons" if segment else "none")
    return record


def _write_image(path: Path, image: np.ndarray) -> None:
    """cv2.imwrite that also works for non-ASCII paths (encode, then write bytes)."""
    ok, encoded = cv2.imencode(path.suffix or ".jpg", image)
    if ok:
        path.write_bytes(encoded.tobytes())
