"""Real `dfseg serve` processes on free loopback ports, shared by the serving tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
from run_builder import write_run
from serve_fixtures import running_server

pytest.importorskip("fastapi", reason="the serve extra is not installed")
httpx = pytest.importorskip("httpx", reason="httpx (dev extra) is not installed")


@pytest.fixture(scope="session")
def serve_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake segmentation run (random N model, 256 px, stretch resize)."""
    return write_run(tmp_path_factory.mktemp("serve-run"), task="segment")[1]


@pytest.fixture(scope="session")
def serve_images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three PNG images of different sizes with bright shapes on noise."""
    folder = tmp_path_factory.mktemp("serve-images")
    rng = np.random.default_rng(5)
    paths = []
    for index, (height, width) in enumerate([(200, 300), (256, 256), (300, 180)]):
        image = rng.integers(0, 90, (height, width, 3), dtype=np.uint8)
        cv2.circle(image, (width // 3, height // 2), min(height, width) // 5, (40, 200, 250), -1)
        cv2.rectangle(
            image, (width // 2, height // 4), (width - 20, height // 2), (250, 60, 30), -1
        )
        path = folder / f"image{index}.png"
        cv2.imwrite(str(path), image)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def server_url(serve_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for most tests: small body and pixel limits so refusals are cheap to test,
    a long batching window so concurrent requests reliably share model calls."""
    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    limits = ["--max-body-mb", "1", "--max-pixels", "1000000", "--max-wait-ms", "100"]
    with running_server(serve_run, *limits, "--max-batch", "4", log=log) as url:
        yield url
