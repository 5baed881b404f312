"""What an export starts from: the checkpoint a target designates (project file, run folder or
.pt file), the run's project (for defaults and validation images), and the parity images."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dfseg.config import ProjectConfig, load_project
from dfseg.data.split import IMAGE_COLUMN
from dfseg.data.synthetic import SyntheticParams, render_image
from dfseg.export.errors import ExportError
from dfseg.runtime.artifacts import (
    BEST_CHECKPOINT,
    PROJECT_SUFFIXES,
    latest_run_dir,
    run_dir_of,
)
from dfseg.runtime.errors import ImageReadError
from dfseg.runtime.images import read_image_bgr

RUN_PROJECT_FILE = "project.yaml"


@dataclass(frozen=True)
class ExportSource:
    """The checkpoint to export and where it comes from.

    Attributes:
        checkpoint: the best.pt / last.pt file.
        run_dir: its run folder (exports go to `<run_dir>/export`), or None for a loose file.
        project: the project (the run's resolved project.yaml, or the file given), if any.
    """

    checkpoint: Path
    run_dir: Path | None
    project: ProjectConfig | None

    @property
    def export_root(self) -> Path:
        """`<run>/export`, or `export/` beside a loose checkpoint."""
        return (self.run_dir or self.checkpoint.parent) / "export"


def find_export_source(target: Path, overrides: Sequence[str] = ()) -> ExportSource:
    """Resolve what `dfseg export TARGET` means.

    Args:
        target: a project file (its newest run's best.pt), a run folder (its best.pt) or a
            checkpoint file.
        overrides: `key=value` overrides of the project (e.g. `export.half=true`).

    Raises:
        ExportError: nothing to export found, or overrides without a project file.
        ConfigError: an invalid project file or override.
    """
    target = Path(target).expanduser()
    if target.suffix.lower() in PROJECT_SUFFIXES:
        project = load_project(target, overrides)
        run_dir = latest_run_dir(project.output_root)
        if run_dir is None:
            raise ExportError(
                f"{target}: no trained run with a {BEST_CHECKPOINT} under {project.output_root}; "
                "train one first with `dfseg train`"
            )
        return ExportSource(run_dir / BEST_CHECKPOINT, run_dir, project)
    if target.is_dir():
        checkpoint = target / BEST_CHECKPOINT
        if not checkpoint.is_file():
            raise ExportError(f"{target}: no {BEST_CHECKPOINT} in this folder; give a run folder")
    elif target.is_file():
        checkpoint = target
    else:
        raise ExportError(f"{target}: no such file or folder")
    run_dir = run_dir_of(checkpoint.parent)
    return ExportSource(checkpoint, run_dir, _run_project(run_dir, overrides, target))


def _run_project(
    run_dir: Path | None, overrides: Sequence[str], target: Path
) -> ProjectConfig | None:
    project_file = run_dir / RUN_PROJECT_FILE if run_dir is not None else None
    if project_file is not None and project_file.is_file():
        return load_project(project_file, overrides)
    if overrides:
        raise ExportError(
            f"{target}: key=value overrides need a project; none was found beside the checkpoint "
            "(use the --options instead)"
        )
    return None


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
    csv_path = project.split_dir / f"{split}.csv"
    if not csv_path.is_file():
        return []
    root = project.data.path if project.data.path.is_dir() else project.data.path.parent
    with csv_path.open(newline="", encoding="utf-8") as handle:
        names = [row.get(IMAGE_COLUMN) or "" for row in csv.DictReader(handle)]
    images = []
    for name in filter(None, names):
        try:
            images.append(read_image_bgr(root / name))
        except ImageReadError:
            continue
        if len(images) == count:
            break
    return images
