"""Inference sources: image files, folders, globs, video files, folders of videos and webcams,
each yielding `Frame`s (a decoded BGR image, or the reason it could not be read)."""

from __future__ import annotations

import glob
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
    """

    image: np.ndarray | None
    name: str
    path: str
    index: int = 0
    error: str | None = None


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
        for path in self.paths:
            try:
                yield Frame(read_image_bgr(path), path.name, str(path))
            except ImageReadError as exc:
                yield Frame(None, path.name, str(path), error=str(exc))


class VideoStream(Source):
    """A video file or a webcam (`device` index), read frame by frame with OpenCV.

    Attributes:
        fps: frames per second (of the file; 30 when the container does not say).
        size_wh: (width, height) of the frames.
    """

    kind = "video"

    def __init__(self, path: Path | None = None, device: int | None = None) -> None:
        self.path, self.device = path, device
        self.label = str(path) if path is not None else f"webcam:{device}"
        self.stem = path.stem if path is not None else f"webcam{device}"
        capture = self._open()
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.size_wh = (
            int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self._count = count if count > 0 and device is None else None
        # Files are reopened when read, so a folder of videos does not hold every file open.
        self._capture: cv2.VideoCapture | None = capture if device is not None else None
        if device is None:
            capture.release()
        else:
            self.kind = "webcam"

    def _open(self) -> cv2.VideoCapture:
        source = str(self.path) if self.path is not None else int(self.device or 0)
        capture = cv2.VideoCapture(source)
        if not capture.isOpened():
            raise ImageReadError(f"{self.label}: cannot be opened as a video")
        return capture

    @property
    def total(self) -> int | None:
        return self._count

    def frames(self) -> Iterator[Frame]:
        capture = self._capture or self._open()
        self._capture = None
        index = 0
        try:
            while True:
                ok, image = capture.read()
                if not ok:
                    break
                yield Frame(image, f"{self.stem}_{index:06d}", self.label, index)
                index += 1
        finally:
            capture.release()


@dataclass
class SourceScan:
    """What a source string resolved to: sources to read and files that could not be opened."""

    sources: list[Source]
    unreadable: list[tuple[str, str]]  # (path, reason)

    @property
    def total(self) -> int | None:
        totals = [source.total for source in self.sources]
        return None if any(t is None for t in totals) else sum(t or 0 for t in totals)


def open_sources(spec: str | Path) -> SourceScan:
    """Resolve a source: an image, a video, a folder (its images and videos, sorted), a glob
    pattern, or a webcam index ("0").

    Raises:
        ImageReadError: nothing matches, or the folder holds no images or videos.
    """
    text = str(spec)
    if text.isdigit() and not Path(text).exists():
        return SourceScan([VideoStream(device=int(text))], [])
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
    return _scan(files)


def _is_media(path: Path) -> bool:
    suffix = path.suffix.lower()
    return suffix in IMAGE_SUFFIXES or suffix in VIDEO_SUFFIXES


def _scan(files: list[Path]) -> SourceScan:
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
            sources.append(VideoStream(path))
        except ImageReadError as exc:
            unreadable.append((str(path), str(exc)))
    if images:
        sources.append(ImageFiles(images))
    return SourceScan(sources, unreadable)
