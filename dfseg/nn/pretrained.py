"""Official D-FINE pretrained weights: release URLs, download into a cache, verification.

Downloads use urllib only. Without network access the error says where to fetch the file by
hand and how to point the project at it.
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from dfseg.config.variants import model_variant
from dfseg.errors import DfsegError
from dfseg.nn.checkpoint import CheckpointError, extract_state_dict, read_checkpoint

ProgressCallback = Callable[[int, int | None], None]


class PretrainedDownloadError(DfsegError):
    """Weights could not be downloaded or the downloaded file is not a valid checkpoint."""


def pretrained_url(size: str, variant: str = "coco") -> str:
    """Release URL of the official weights for (size, variant) (the size's row of
    `dfseg.config.variants.MODEL_VARIANTS`); ValueError if none exists."""
    return model_variant(size).pretrained_url(variant)


def _verify(path: Path) -> None:
    try:
        state_dict, _ = extract_state_dict(read_checkpoint(path), str(path))
    except CheckpointError as exc:
        raise PretrainedDownloadError(f"downloaded file is not a valid checkpoint: {exc}") from exc
    if not any(key.startswith("decoder.") for key in state_dict):
        raise PretrainedDownloadError(f"{path} holds no D-FINE decoder weights")


def _fetch(url: str, destination: Path, progress: ProgressCallback | None, timeout: float) -> None:
    """Stream `url` into a partial file beside `destination`, then move it into place."""
    partial = destination.with_name(destination.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, partial.open("wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length else None
            done = 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        shutil.move(partial, destination)
    finally:
        partial.unlink(missing_ok=True)


def download_pretrained(
    size: str,
    cache_dir: Path,
    variant: str = "coco",
    url: str | None = None,
    progress: ProgressCallback | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download (once) and verify the official weights of a size.

    Args:
        size: "n", "s", "m", "l" or "x".
        cache_dir: folder for the file (created if needed); an existing valid file is reused.
        variant: "coco", "obj2coco" or "obj365".
        url: override the release URL (mirrors, file:// URLs).
        progress: called with (bytes so far, total bytes or None) while downloading.
        timeout: socket timeout in seconds.

    Returns:
        Path of the verified checkpoint file in `cache_dir`.

    Raises:
        PretrainedDownloadError: network failure or an invalid file, with a manual fallback.
    """
    url = url or pretrained_url(size, variant)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    destination = cache_dir / Path(urllib.request.url2pathname(url.rsplit("/", 1)[-1])).name
    if destination.is_file():
        try:
            _verify(destination)
            return destination
        except PretrainedDownloadError:
            destination.unlink()  # a truncated earlier download: fetch again
    try:
        _fetch(url, destination, progress, timeout)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise PretrainedDownloadError(
            f"could not download {url} ({exc}); download it by hand and set "
            f"model.pretrained: /path/to/file.pth"
        ) from exc
    try:
        _verify(destination)
    except PretrainedDownloadError:
        destination.unlink(missing_ok=True)
        raise
    return destination
