"""Inference sources: image files, folders, globs, video files, folders of videos and webcams,
each yielding `Frame`s (a decoded BGR image, or the reason it could not be read)."""

from __future__ import annotations

import glob
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dfseg.runtime.errors import ImageReadError
from dfseg.runtime.images import IMAGE_SUFFIXES, read_image_bgr

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}
)


@dataclass(frozen=True)
class Frame:
    """One image to predict.

    Attributes:
        image: [H, W, 3] uint8 BGR, or None when it could not be read (see `error`).
        name: a file-system safe name (image file name; `<video stem>_<frame index>` for video).
        path: the file it came from ("webcam:<index>" for cameras).
        index: frame index within a video (0 for still images).
        error: why the frame is missing, else None.
        position: the frame's place among those its source yields (images in sorted order;
            video frames after `stride`), from 0.
    """

    image: np.ndarray | None
    name: str
    path: str
    index: int = 0
    error: str | None = None
    position: int = 0


class Source(ABC):
    """A stream of frames with a known length where possible."""

    kind: str = "images"

    @property
    @abstractmethod
    def total(self) -> int | None:
        """Frames this source will yield (None: unknown, e.g. a webcam)."""

    @abstractmethod
    def frames(self) -> Iterator[Frame]:
        """Yield the frames in order."""


class ImageFiles(Source):
    """Still images; unreadable files come out as frames with an `error`."""

    kind = "images"

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths

    @property
    def total(self) -> int:
        return len(self.paths)

    def frames(self) -> Iterator[Frame]:
        for position, path in enumerate(self.paths):
            try:
                yield Frame(read_image_bgr(path), path.name, str(path), position=position)
            except ImageReadError as exc:
                yield Frame(None, path.name, str(path), error=str(exc), position=position)


class VideoStream(Source):
    """A video file, a stream URL (rtsp://, rtmp://, http(s)://) or a webcam (`device` index),
    read frame by frame with OpenCV.

    Args:
        path: a video file; url: a stream address; device: a webcam index (one of the three).
        stride: yield every `stride`-th frame (skipped frames are grabbed, not decoded).
        max_fps: yield at most this many frames per second: of video time for files, of wall
            time for live sources (a camera or stream is read at its own pace and the frames in
            between are dropped, so predictions never fall behind).

    Attributes:
        fps: frames per second (of the file; 30 when the container does not say).
        size_wh: (width, height) of the frames.
        live: a camera or a stream without a known length.
    """

    kind = "video"

    def __init__(
        self,
        path: Path | None = None,
        device: int | None = None,
        url: str | None = None,
        stride: int = 1,
        max_fps: float | None = None,
    ) -> None:
        self.path, self.device, self.url = path, device, url
        self.stride, self.max_fps = max(1, int(stride)), max_fps
        self.label = str(path) if path is not None else url or f"webcam:{device}"
        self.stem = path.stem if path is not None else _url_stem(url) if url else f"webcam{device}"
        capture = self._open()
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.size_wh = (
            int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.live = device is not None or count <= 0
        self._count = None if self.live else count
        # Files are reopened when read, so a folder of videos does not hold every file open.
        self._capture: cv2.VideoCapture | None = capture if self.live else None
        if not self.live:
            capture.release()
        if device is not None:
            self.kind = "webcam"

    def _open(self) -> cv2.VideoCapture:
        source: str | int = (
            str(self.path) if self.path is not None else self.url or int(self.device or 0)
        )
        capture = cv2.VideoCapture(source)
        if not capture.isOpened():
            raise ImageReadError(f"{self.label}: cannot be opened as a video")
        return capture

    @property
    def step(self) -> int:
        """Source frames per yielded frame (from `stride` and, for files, `max_fps`)."""
        if self.max_fps is None or self.live:
            return self.stride
        return max(self.stride, int(np.ceil(self.fps / self.max_fps - 1e-9)))

    @property
    def output_fps(self) -> float:
        """Frames per second of what is yielded (the annotated video's rate)."""
        if self.live and self.max_fps is not None:
            return min(self.fps / self.stride, self.max_fps)
        return self.fps / self.step

    @property
    def total(self) -> int | None:
        return None if self._count is None else -(-self._count // self.step)

    def frames(self) -> Iterator[Frame]:
        capture = self._capture or self._open()
        self._capture = None
        step, index, position = self.step, 0, 0
        interval = 1.0 / self.max_fps if self.live and self.max_fps else 0.0
        due = 0.0
        try:
            while True:
                if index % step and capture.grab():  # skipped: not decoded
                    index += 1
                    continue
                ok, image = capture.read()
                if not ok:
                    break
                now = time.perf_counter()
                if now >= due:
                    due = max(due + interval, now) if interval else 0.0
                    yield Frame(image, f"{self.stem}_{index:06d}", self.label, index,
                                position=position)  # fmt: skip
                    position += 1
                index += 1
        finally:
            capture.release()


def _url_stem(url: str) -> str:
    """A file-system safe name for a stream address (its last path part, else its host)."""
    tail = url.split("://", 1)[-1].rstrip("/")
    name = Path(tail.split("?", 1)[0]).stem or tail.split("/", 1)[0]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "stream"


@dataclass
class SourceScan:
    """What a source string resolved to: sources to read and files that could not be opened."""

    sources: list[Source]
    unreadable: list[tuple[str, str]]  # (path, reason)

    @property
    def total(self) -> int | None:
        totals = [source.total for source in self.sources]
        return None if any(t is None for t in totals) else sum(t or 0 for t in totals)


STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://")


def open_sources(spec: str | Path, stride: int = 1, max_fps: float | None = None) -> SourceScan:
    """Resolve a source: an image, a video, a folder (its images and videos, sorted), a glob
    pattern, a stream URL (rtsp, rtmp, http, https) or a webcam index ("0").

    Args:
        spec: the source.
        stride, max_fps: which video frames to yield (see `VideoStream`).

    Raises:
        ImageReadError: nothing matches, the folder holds no images or videos, or a stream or
            camera cannot be opened.
    """
    text = str(spec)
    if text.isdigit() and not Path(text).exists():
        return SourceScan([VideoStream(device=int(text), stride=stride, max_fps=max_fps)], [])
    if text.lower().startswith(STREAM_SCHEMES):
        return SourceScan([VideoStream(url=text, stride=stride, max_fps=max_fps)], [])
    path = Path(text).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and _is_media(p))
        if not files:
            raise ImageReadError(f"{path}: no images or videos in this folder")
    elif path.is_file():
        files = [path]
    else:
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        files = [p for p in files if _is_media(p)]
        if not files:
            raise ImageReadError(f"{text}: no such file, folder or matching images/videos")
    return _scan(files, stride, max_fps)


def _is_media(path: Path) -> bool:
    suffix = path.suffix.lower()
    return suffix in IMAGE_SUFFIXES or suffix in VIDEO_SUFFIXES


def _scan(files: list[Path], stride: int, max_fps: float | None) -> SourceScan:
    sources: list[Source] = []
    unreadable: list[tuple[str, str]] = []
    images: list[Path] = []
    for path in files:
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            images.append(path)
            continue
        if images:
            sources.append(ImageFiles(images))
            images = []
        try:
            sources.append(VideoStream(path, stride=stride, max_fps=max_fps))
        except ImageReadError as exc:
            unreadable.append((str(path), str(exc)))
    if images:
        sources.append(ImageFiles(images))
    return SourceScan(sources, unreadable)
