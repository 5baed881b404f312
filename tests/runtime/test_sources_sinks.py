"""Sources (images, folders, globs, videos) and sinks (YOLO txt, crops, JSONL)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from dfseg.runtime.errors import ImageReadError
from dfseg.runtime.sinks import Crops, JsonLines, yolo_lines
from dfseg.runtime.sources import Frame, ImageFiles, VideoStream, open_sources
from dfseg.structures import Detections


def write_video(
    path: Path, frames: int, size_wh: tuple[int, int] = (96, 64), fps: float = 12.0
) -> None:
    """An mp4v video whose frame i has a white square at x = 4 * i."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, size_wh)
    for index in range(frames):
        frame = np.zeros((size_wh[1], size_wh[0], 3), np.uint8)
        frame[10:30, 4 * index : 4 * index + 20] = 255
        writer.write(frame)
    writer.release()


def _detections(masks: bool) -> Detections:
    boxes = np.array([[10, 20, 50, 60], [0, 0, 100, 40]], np.float32)
    mask_array = None
    if masks:
        mask_array = np.zeros((2, 80, 100), bool)
        mask_array[0, 20:60, 10:50] = True  # the box exactly
    return Detections(boxes, np.array([0.9, 0.4], np.float32), np.array([1, 0]),
                      ["cat", "dog"], (80, 100), mask_array)  # fmt: skip


def test_folder_mixes_images_and_videos_and_reports_unreadable(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((20, 30, 3), np.uint8))
    (tmp_path / "b.jpg").write_bytes(b"garbage")
    (tmp_path / "notes.txt").write_text("ignored")
    write_video(tmp_path / "c.mp4", frames=5)
    (tmp_path / "d.mp4").write_bytes(b"not a video")
    scan = open_sources(tmp_path)
    assert [type(s) for s in scan.sources] == [ImageFiles, VideoStream]
    assert [Path(p).name for p, _ in scan.unreadable] == ["d.mp4"]
    assert scan.total == 2 + 5
    frames = [f for source in scan.sources for f in source.frames()]
    assert [f.name for f in frames] == ["a.png", "b.jpg"] + [f"c_{i:06d}" for i in range(5)]
    assert frames[1].image is None and "not a readable image" in (frames[1].error or "")
    video = scan.sources[1]
    assert isinstance(video, VideoStream) and video.fps == pytest.approx(12.0)
    assert video.size_wh == (96, 64) and frames[2].image is not None
    assert frames[2].image.shape == (64, 96, 3) and frames[3].index == 1


def test_globs_single_files_and_missing_sources(tmp_path: Path) -> None:
    for name in ("x1.png", "x2.png", "y.png"):
        cv2.imwrite(str(tmp_path / name), np.zeros((8, 8, 3), np.uint8))
    scan = open_sources(str(tmp_path / "x*.png"))
    assert scan.total == 2
    assert open_sources(tmp_path / "y.png").total == 1
    with pytest.raises(ImageReadError, match="no such file"):
        open_sources(tmp_path / "z*.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageReadError, match="no images or videos"):
        open_sources(tmp_path / "empty")


def test_yolo_rows_for_boxes_and_polygons() -> None:
    boxes = yolo_lines(_detections(masks=False), save_conf=True, segment=False)
    assert boxes[0] == "1 0.300000 0.500000 0.400000 0.500000 0.90000\n"
    assert boxes[1].split()[:5] == ["0", "0.500000", "0.250000", "1.000000", "0.500000"]
    polygons = yolo_lines(_detections(masks=True), save_conf=False, segment=True)
    values = np.array(polygons[0].split()[1:], float).reshape(-1, 2) * [100, 80]
    assert polygons[0].startswith("1 ")
    assert values.min(0) == pytest.approx([10.25, 20.25]) and values.max(0) == pytest.approx(
        [49.75, 59.75]
    )
    fallback = np.array(polygons[1].split()[1:], float)  # empty mask: the box's corners
    assert fallback.tolist() == [0.0, 0.0, 1.0, 0.0, 1.0, 0.5, 0.0, 0.5]


def test_crops_are_padded_and_clipped(tmp_path: Path) -> None:
    image = np.arange(80 * 100 * 3, dtype=np.uint32).reshape(80, 100, 3).astype(np.uint8)
    Crops(tmp_path, padding=5).write(Frame(image, "pic.png", "pic.png"), _detections(False), None)
    dog = cv2.imread(str(tmp_path / "crops" / "dog" / "pic_0.jpg"))
    cat = cv2.imread(str(tmp_path / "crops" / "cat" / "pic_1.jpg"))
    assert dog.shape == (50, 50, 3) and cat.shape == (45, 100, 3)  # cat clipped at the border


def test_jsonl_has_one_line_per_frame_readable_or_not(tmp_path: Path) -> None:
    sink = JsonLines(tmp_path, segment=True)
    sink.write(
        Frame(np.zeros((80, 100, 3), np.uint8), "a.png", "/d/a.png"), _detections(True), None
    )
    sink.write_unreadable(Frame(None, "b.png", "/d/b.png", error="/d/b.png: broken"))
    sink.close()
    first, second = (
        json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()
    )
    assert first["image_size"] == [80, 100] and len(first["detections"]) == 2
    assert first["detections"][0]["name"] == "dog" and first["detections"][1]["name"] == "cat"
    assert first["detections"][0]["box_xyxy"] == [10.0, 20.0, 50.0, 60.0]
    assert len(first["detections"][0]["polygons"]) == 1 and first["detections"][1]["polygons"] == []
    assert second == {
        "source": "/d/b.png",
        "name": "b.png",
        "frame": 0,
        "error": "/d/b.png: broken",
    }
