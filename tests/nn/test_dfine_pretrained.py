"""Pretrained download: release URLs, caching, verification and the offline message."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from dfseg.config.variants import MODEL_VARIANTS
from dfseg.nn.pretrained import (
    PretrainedDownloadError,
    download_pretrained,
    pretrained_url,
)


@pytest.fixture()
def checkpoint_file(tmp_path: Path) -> Path:
    folder = tmp_path / "served"
    folder.mkdir()
    path = folder / "dfine_n_coco.pth"
    torch.save({"model": {"decoder.up": torch.tensor([0.5])}}, path)
    return path


@pytest.fixture()
def file_server(checkpoint_file: Path) -> Iterator[str]:
    """A local HTTP server over the checkpoint's folder; yields its base URL."""
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(checkpoint_file.parent)
    )
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


def test_official_urls() -> None:
    base = "https://github.com/Peterande/storage/releases/download/dfinev1.0"
    assert pretrained_url("n") == f"{base}/dfine_n_coco.pth"
    assert pretrained_url("x", "obj2coco") == f"{base}/dfine_x_obj2coco.pth"
    assert pretrained_url("l", "obj2coco") == f"{base}/dfine_l_obj2coco_e25.pth"
    assert all("coco" in variant.pretrained for variant in MODEL_VARIANTS.values())
    with pytest.raises(ValueError, match="no official 'obj2coco' weights for size 'n'"):
        pretrained_url("n", "obj2coco")


def test_download_over_http_reports_progress_and_caches(file_server: str, tmp_path: Path) -> None:
    progress: list[tuple[int, int | None]] = []
    cache = tmp_path / "cache"
    url = f"{file_server}/dfine_n_coco.pth"
    path = download_pretrained("n", cache, url=url, progress=lambda d, t: progress.append((d, t)))
    assert path == cache / "dfine_n_coco.pth"
    assert torch.load(path, weights_only=True)["model"]["decoder.up"].item() == 0.5
    assert progress and progress[-1][0] == progress[-1][1] == path.stat().st_size
    # Second call reuses the cached file: no server needed.
    again = download_pretrained("n", cache, url="http://127.0.0.1:9/dfine_n_coco.pth")
    assert again == path


def test_download_from_file_url(checkpoint_file: Path, tmp_path: Path) -> None:
    path = download_pretrained("n", tmp_path / "c", url=checkpoint_file.as_uri())
    assert path.read_bytes() == checkpoint_file.read_bytes()


def test_offline_error_tells_how_to_proceed(tmp_path: Path) -> None:
    with pytest.raises(PretrainedDownloadError) as error:
        download_pretrained("n", tmp_path, url="http://127.0.0.1:9/dfine_n_coco.pth", timeout=5)
    message = str(error.value)
    assert "could not download http://127.0.0.1:9/dfine_n_coco.pth" in message
    assert "model.pretrained: /path/to/file.pth" in message
    assert not list(tmp_path.iterdir())  # no partial file left behind


def test_invalid_download_is_rejected_and_removed(tmp_path: Path) -> None:
    bogus = tmp_path / "dfine_s_coco.pth"
    bogus.write_text("<html>rate limited</html>")
    cache = tmp_path / "cache"
    with pytest.raises(PretrainedDownloadError, match="not a valid checkpoint"):
        download_pretrained("s", cache, url=bogus.as_uri())
    assert not (cache / "dfine_s_coco.pth").exists()
