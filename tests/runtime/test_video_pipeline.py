"""Video: frame stride and rate limits, stream URLs, the reader/writer threads, and Ctrl-C."""

from __future__ import annotations

import functools
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_sources_sinks import write_video

from dfseg.runtime.pipeline import ReadAhead, WriteBehind
from dfseg.runtime.sources import VideoStream, open_sources


def test_stride_and_max_fps_pick_frames_and_keep_their_numbers(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    write_video(video, 30, fps=30.0)
    (strided,) = open_sources(video, stride=3).sources
    assert isinstance(strided, VideoStream) and strided.total == 10
    frames = list(strided.frames())
    assert [f.index for f in frames] == list(range(0, 30, 3))
    assert [f.position for f in frames] == list(range(10))
    assert strided.output_fps == pytest.approx(10.0)
    # frame 9 is the one with its square at x = 36: the stride skipped, it did not renumber
    assert frames[3].image is not None and frames[3].image[20, 36 + 10].min() > 200
    (limited,) = open_sources(video, max_fps=7.5).sources
    assert isinstance(limited, VideoStream) and limited.step == 4 and limited.total == 8
    assert [f.index for f in limited.frames()] == list(range(0, 30, 4))


@pytest.fixture
def http_video(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A video served over HTTP on loopback (as a camera or media server would stream it)."""
    write_video(tmp_path / "clip.mp4", 24, fps=12.0)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/clip.mp4", tmp_path / "clip.mp4"
    finally:
        server.shutdown()


def test_a_stream_url_is_read_through_opencv(http_video: tuple[str, Path]) -> None:
    url, path = http_video
    (stream,) = open_sources(url).sources
    assert isinstance(stream, VideoStream) and stream.stem == "clip"
    streamed = [f.image for f in stream.frames()]
    local = [f.image for f in VideoStream(path).frames()]
    assert len(streamed) == len(local) == 24
    assert all(np.array_equal(a, b) for a, b in zip(streamed, local, strict=True))


def test_read_ahead_keeps_order_bounds_memory_and_raises_in_the_consumer() -> None:
    produced: list[int] = []

    def numbers() -> Iterator[int]:
        for value in range(100):
            produced.append(value)
            yield value

    with ReadAhead(numbers(), depth=3) as ahead:
        iterator = iter(ahead)
        assert next(iterator) == 0
        time.sleep(0.2)
        assert len(produced) <= 5  # 1 taken + 3 queued + 1 waiting to be put
        assert list(iterator) == list(range(1, 100))

    def failing() -> Iterator[int]:
        yield 1
        raise OSError("disk gone")

    with ReadAhead(failing()) as ahead, pytest.raises(OSError, match="disk gone"):
        list(ahead)


def test_write_behind_runs_jobs_in_order_and_reports_the_first_error() -> None:
    done: list[int] = []
    writer = WriteBehind(depth=2)
    for value in range(20):
        writer.submit(functools.partial(done.append, value))
    writer.close()
    assert done == list(range(20))

    def broken() -> None:
        raise ValueError("cannot encode")

    failing = WriteBehind()
    failing.submit(broken)
    with pytest.raises(ValueError, match="cannot encode"):
        failing.close()


def test_ctrl_c_stops_infer_with_playable_outputs(tmp_path: Path, segment_run_dir: Path) -> None:
    """SIGINT to a real `dfseg infer` process mid-video: exit code 130, and the annotated video
    and the JSONL hold the same frames, all complete."""
    video = tmp_path / "long.mp4"
    write_video(video, 600, size_wh=(160, 120), fps=30.0)
    env = {**os.environ, "DFSEG_THREADS": "1"}
    command = [sys.executable, "-m", "dfseg", "infer", str(segment_run_dir), str(video)]
    before = set(segment_run_dir.glob("infer*"))  # the session's run holds others' outputs
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    jsonl = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        found = [d / "predictions.jsonl" for d in set(segment_run_dir.glob("infer*")) - before]
        if found and found[0].exists() and len(found[0].read_text().splitlines()) >= 5:
            jsonl = found[0]
            break
        time.sleep(0.2)
    assert jsonl is not None, process.communicate()[1].decode()[-2000:]
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr.decode()[-2000:]
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]  # every line complete
    assert 5 <= len(lines) < 600
    capture = cv2.VideoCapture(str(jsonl.parent / "long.mp4"))
    decoded = 0
    while capture.read()[0]:
        decoded += 1
    capture.release()
    assert decoded == len(lines)
