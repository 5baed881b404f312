"""What an export starts from: the checkpoint a target designates (project file, run folder or
.pt file), the run's project (for defaults and validation images), and the parity images."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dfseg.config import ProjectConfig
from dfseg.data.split import split_image_paths
from dfseg.data.synthetic import SyntheticParams, render_image
from dfseg.runtime.errors import ImageReadError
from dfseg.runtime.images import read_image_bgr
from dfseg.structures.run_layout import EXPORT_DIR, RunFolder, Target, resolve_target


@dataclass(frozen=True)
class ExportSource:
    """The checkpoint to export and where it comes from.

    Attributes:
        checkpoint: the best.pt / last.pt file.
        run: its run folder (exports go to `<run>/export`), or None for a loose file.
        project: the project (the run's resolved project.yaml, or the file given), if any.
    """

    checkpoint: Path
    run: RunFolder | None
    project: ProjectConfig | None

    @property
    def export_root(self) -> Path:
        """`<run>/export`, or `export/` beside a loose checkpoint."""
        return self.run.export_dir if self.run is not None else self.checkpoint.parent / EXPORT_DIR


def find_export_source(target: Path | str | Target, overrides: Sequence[str] = ()) -> ExportSource:
    """Resolve what `dfseg export TARGET` means.

    Args:
        target: a project file (its newest run's best.pt), a run folder (its best.pt) or a
            checkpoint file; or what `resolve_target` made of one.
        overrides: `key=value` overrides of the project (e.g. `export.half=true`).

    Raises:
        RunNotFoundError: nothing to export found, or overrides without a project file.
        ConfigError: an invalid project file or override.
    """
    resolved = target if isinstance(target, Target) else resolve_target(target, overrides)
    return ExportSource(resolved.checkpoint("best"), resolved.run, resolved.project())


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ParityImages:
    """Images for the parity check: [H, W, 3] uint8 BGR arrays and where they came from."""

    images: list[np.ndarray]
    source: str


def parity_images(
    project: ProjectConfig | None, count: int, size_hw: tuple[int, int]
) -> ParityImages:
    """`count` readable images of the run's validation split, topped up from the test and train
    splits, else (no project or no readable split images) generated shapes of `size_hw`."""
    if project is not None:
        images: list[np.ndarray] = []
        used = []
        for split in ("val", "test", "train"):
            found = _split_images(project, split, count - len(images))
            if found:
                images += found
                used.append(f"{split} ({len(found)})")
            if len(images) == count:
                break
        if images:
            return ParityImages(images, f"{' + '.join(used)} split of {project.data.path}")
    params = SyntheticParams(
        num_images=count, image_size=size_hw, classes=("circle", "square", "triangle", "star"),
        seed=0, max_objects=6, min_object_size=max(4, min(size_hw) // 16),
        background_fraction=0.0,
    )  # fmt: skip
    return ParityImages([render_image(i, params)[0] for i in range(count)], "generated shapes")


def _split_images(project: ProjectConfig, split: str, count: int) -> list[np.ndarray]:
    images = []
    for path in split_image_paths(project.split_dir, project.data.path, split):
        try:
            images.append(read_image_bgr(path))
        except ImageReadError:
            continue
        if len(images) == count:
            break
    return images
