"""`split_dataset` / `load_split`: seeded, stratified train/val/test lists stored as CSV files.

The split folder holds `train.csv`, `val.csv`, `test.csv` (one row per image, column `image`: the
image path relative to the dataset root, posix) and `split.json` (seed, ratios, counts, dataset
fingerprint). Splitting only writes these four files; it never touches the dataset and refuses to
replace existing split files unless asked to.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
from pydantic import BaseModel

from dfseg.data.stratify import assign_splits
from dfseg.errors import DfsegError
from dfseg.structures import Dataset, ImageAnnotation

SPLIT_NAMES = ("train", "val", "test")
SPLIT_INFO_FILE = "split.json"
IMAGE_COLUMN = "image"


class SplitError(DfsegError):
    """Invalid ratios, split files in the way, or split files that do not match the dataset."""


class SplitClassCounts(BaseModel):
    """Images containing the class and its instances, per split (crowd regions not counted)."""

    class_id: int
    name: str
    images: dict[str, int]
    instances: dict[str, int]


class SplitReport(BaseModel):
    """What `dfseg split` prints and `split.json` records.

    `source` is "ratios" (a seeded stratified split) or "predefined" (the dataset's own splits,
    `sources` naming their folders or list files).
    """

    out_dir: str
    source: str = "ratios"
    sources: dict[str, str] = {}
    seed: int
    ratios: dict[str, float]
    actual_ratios: dict[str, float] = {}
    counts: dict[str, int]
    backgrounds: dict[str, int]
    dropped_backgrounds: int
    skipped: list[str] = []
    duplicate_groups: int = 0
    duplicate_images: int = 0
    fingerprint: str
    classes: list[SplitClassCounts]
    notes: list[str]
    files: list[str]


def split_files(out_dir: Path) -> list[Path]:
    return [out_dir / f"{name}.csv" for name in SPLIT_NAMES] + [out_dir / SPLIT_INFO_FILE]


def validate_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    """(train, val, test) fractions: each >= 0, train > 0, summing to 1.

    Raises:
        SplitError: with the offending numbers.
    """
    if len(ratios) != 3:
        raise SplitError(f"expected 3 ratios (train, val, test), got {len(ratios)}")
    train, val, test = (float(r) for r in ratios)
    if not all(np.isfinite([train, val, test])) or min(train, val, test) < 0:
        raise SplitError(f"split ratios must be >= 0, got train={train} val={val} test={test}")
    if train <= 0:
        raise SplitError("the train ratio must be > 0")
    total = train + val + test
    if abs(total - 1.0) > 1e-6:
        raise SplitError(
            f"split ratios must add up to 1: train {train} + val {val} + test {test} = {total:g}"
        )
    return train, val, test


def relative_image_path(image: ImageAnnotation, root: Path) -> str:
    """The image path relative to the dataset root, posix (`../` when outside the root)."""
    return Path(os.path.relpath(image.image_path, root)).as_posix()


def dataset_fingerprint(dataset: Dataset) -> str:
    """A short hash of the image paths and their class ids: changes when the dataset does."""
    digest = hashlib.sha256()
    digest.update("\n".join(dataset.class_names).encode())
    for path, labels in sorted(
        (relative_image_path(image, dataset.root), image.labels.tolist())
        for image in dataset.images
    ):
        digest.update(f"\n{path}\t{labels}".encode())
    return digest.hexdigest()[:16]


def split_dataset(
    dataset: Dataset,
    out_dir: Path,
    ratios: Sequence[float] = (0.8, 0.2, 0.0),
    seed: int = 42,
    ignore_negatives: bool = False,
    overwrite: bool = False,
    duplicates: Sequence[Sequence[Path]] = (),
) -> SplitReport:
    """Split the dataset's images into train/val/test and write the split files.

    Args:
        dataset: the dataset as read by `read_dataset`.
        out_dir: folder for train.csv, val.csv, test.csv and split.json (created if missing).
        ratios: (train, val, test) fractions of images; >= 0, train > 0, sum 1.
        seed: the same seed and dataset give the same split.
        ignore_negatives: leave background images (no objects) out of every split.
        overwrite: replace existing split files instead of refusing.
        duplicates: groups of image paths that are copies of one another (`dfseg.data.duplicates`):
            each group goes whole into one split, so no split holds a copy of another's image.

    Returns:
        Per split image counts and per-class image/instance counts, plus notes (classes too rare
        to appear in every split, empty splits).

    Raises:
        SplitError: bad ratios, or split files already exist and `overwrite` is False.
    """
    train, val, test = validate_ratios(ratios)
    _refuse_existing(out_dir, overwrite)
    images = [im for im in dataset.images if not (ignore_negatives and im.is_background)]
    units = _units(images, duplicates)
    label_sets = [
        np.concatenate([images[i].labels[~images[i].iscrowd] for i in unit]) for unit in units
    ]
    per_unit, too_rare = assign_splits(label_sets, dataset.num_classes, (train, val, test), seed)
    assignment = np.empty(len(images), dtype=np.int64)
    for unit, split_index in zip(units, per_unit.tolist(), strict=True):
        assignment[unit] = split_index
    by_split = {
        name: [images[i] for i in np.flatnonzero(assignment == k)]
        for k, name in enumerate(SPLIT_NAMES)
    }
    report = _report(dataset, by_split, out_dir, (train, val, test), seed, too_rare)
    report.dropped_backgrounds = len(dataset.images) - len(images)
    grouped = [unit for unit in units if len(unit) > 1]
    report.duplicate_groups, report.duplicate_images = len(grouped), sum(map(len, grouped))
    if grouped:
        report.notes.append(
            f"{len(grouped)} groups of copies ({report.duplicate_images} images) were each kept "
            "within one split (`dfseg check` lists them)"
        )
    _write(dataset, by_split, report, out_dir, ignore_negatives)
    return report


def _units(
    images: Sequence[ImageAnnotation], duplicates: Sequence[Sequence[Path]]
) -> list[list[int]]:
    """Indices of `images` in units that are split whole: each duplicate group (the members
    that are among `images`), every other image alone."""
    index_of = {image.image_path: i for i, image in enumerate(images)}
    units: list[list[int]] = []
    grouped: set[int] = set()
    for group in duplicates:
        members = sorted({index_of[path] for path in group if path in index_of} - grouped)
        if len(members) > 1:
            units.append(members)
            grouped.update(members)
    units += [[i] for i in range(len(images)) if i not in grouped]
    return sorted(units)


def write_predefined_split(
    dataset: Dataset,
    by_split: dict[str, list[ImageAnnotation]],
    out_dir: Path,
    sources: dict[str, str],
    ignore_negatives: bool = False,
    overwrite: bool = False,
) -> SplitReport:
    """Write the dataset's own splits as the split files (the same files `split_dataset`
    writes, so every command reads them alike).

    Args:
        dataset: every split's images (root: the dataset folder).
        by_split: "train", "val", "test" -> images (missing splits are empty).
        out_dir: the split folder.
        sources: split -> the folder or list file it came from, for the report.
        ignore_negatives: leave background images out.
        overwrite: replace existing split files instead of refusing.

    Raises:
        SplitError: split files in the way and `overwrite` is False; no train images.
    """
    _refuse_existing(out_dir, overwrite)
    kept = {
        name: [i for i in by_split.get(name, []) if not (ignore_negatives and i.is_background)]
        for name in SPLIT_NAMES
    }
    if not kept["train"]:
        raise SplitError(f"the dataset's train split ({sources.get('train')}) has no images")
    total = sum(len(images) for images in kept.values())
    ratios = tuple(len(kept[name]) / total for name in SPLIT_NAMES)
    report = _report(dataset, kept, out_dir, ratios, 0, [])  # type: ignore[arg-type]
    report.source, report.sources = "predefined", dict(sources)
    report.dropped_backgrounds = sum(len(v) for v in by_split.values()) - total
    _write(dataset, kept, report, out_dir, ignore_negatives)
    return report


def _refuse_existing(out_dir: Path, overwrite: bool) -> None:
    existing = [p for p in split_files(out_dir) if p.exists()]
    if existing and not overwrite:
        raise SplitError(
            f"Split files already exist: {', '.join(str(p) for p in existing)}. Pass "
            "--overwrite to replace them (the dataset itself is never modified)."
        )


def _report(
    dataset: Dataset,
    by_split: dict[str, list[ImageAnnotation]],
    out_dir: Path,
    ratios: tuple[float, float, float],
    seed: int,
    too_rare: list[int],
) -> SplitReport:
    classes = []
    for c, name in enumerate(dataset.class_names):
        images = {
            s: sum(bool((im.labels[~im.iscrowd] == c).any()) for im in by_split[s])
            for s in SPLIT_NAMES
        }
        instances = {
            s: sum(int((im.labels[~im.iscrowd] == c).sum()) for im in by_split[s])
            for s in SPLIT_NAMES
        }
        classes.append(SplitClassCounts(class_id=c, name=name, images=images, instances=instances))
    ratio_of = dict(zip(SPLIT_NAMES, ratios, strict=True))
    notes = [f"the {s} split is empty" for s in SPLIT_NAMES if ratio_of[s] > 0 and not by_split[s]]
    notes += _missing_class_notes(classes, ratio_of, set(too_rare))
    total = sum(len(images) for images in by_split.values())
    return SplitReport(
        out_dir=str(out_dir),
        seed=seed,
        ratios=ratio_of,
        actual_ratios={s: round(len(by_split[s]) / max(total, 1), 4) for s in SPLIT_NAMES},
        counts={s: len(by_split[s]) for s in SPLIT_NAMES},
        backgrounds={s: sum(im.is_background for im in by_split[s]) for s in SPLIT_NAMES},
        dropped_backgrounds=0,
        fingerprint=dataset_fingerprint(dataset),
        classes=classes,
        notes=notes,
        files=[str(p) for p in split_files(out_dir)],
    )


def _missing_class_notes(
    classes: list[SplitClassCounts], ratios: dict[str, float], too_rare: set[int]
) -> list[str]:
    """A note for every class (with instances) that the train split or another split with a
    ratio > 0 has no image of: the model cannot learn it, or its metrics are undefined."""
    notes = []
    for row in classes:
        total = sum(row.images.values())
        missing = [s for s in SPLIT_NAMES if ratios[s] > 0 and row.images[s] == 0]
        if total == 0 or not missing:
            continue
        plural = "s" if total != 1 else ""
        why = f" (only {total} image{plural})" if row.class_id in too_rare else ""
        notes.append(f"class {row.name!r} has no image in the {' or '.join(missing)} split{why}")
    return notes


def _write(
    dataset: Dataset,
    by_split: dict[str, list[ImageAnnotation]],
    report: SplitReport,
    out_dir: Path,
    ignore_negatives: bool,
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in SPLIT_NAMES:
        paths = sorted(relative_image_path(image, dataset.root) for image in by_split[name])
        pl.DataFrame({IMAGE_COLUMN: paths}, schema={IMAGE_COLUMN: pl.String}).write_csv(
            out_dir / f"{name}.csv"
        )
    info = {
        "dataset": str(dataset.root),
        "source": report.source,
        "sources": report.sources,
        "format": dataset.format,
        "class_names": dataset.class_names,
        "seed": report.seed,
        "ratios": report.ratios,
        "ignore_negatives": ignore_negatives,
        "counts": report.counts,
        "fingerprint": report.fingerprint,
    }
    (out_dir / SPLIT_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")


def load_split(folder: Path, dataset: Dataset) -> dict[str, list[ImageAnnotation]]:
    """The images of each split, as listed in the split folder's CSV files.

    Args:
        folder: holds train.csv and val.csv (test.csv optional).
        dataset: the dataset the paths are relative to.

    Returns:
        {"train": [...], "val": [...], "test": [...]} in CSV order.

    Raises:
        SplitError: a missing CSV or `image` column, an image listed twice, or listed images that
            are not in the dataset (moved, deleted, or left out because they are corrupt).
    """
    index = {relative_image_path(image, dataset.root): image for image in dataset.images}
    splits: dict[str, list[ImageAnnotation]] = {}
    seen: dict[str, str] = {}
    for name in SPLIT_NAMES:
        paths = _read_csv(folder / f"{name}.csv", required=name != "test")
        for path in paths:
            if path in seen:
                raise SplitError(f"{path} is listed in both {seen[path]}.csv and {name}.csv")
            seen[path] = name
        missing = [p for p in paths if p not in index]
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise SplitError(
                f"{folder / f'{name}.csv'}: {len(missing)} listed image(s) are not in the dataset "
                f"at {dataset.root}: {shown}. The dataset changed since the split (or those images "
                "are unreadable; see `dfseg check`); re-run `dfseg split --overwrite`."
            )
        splits[name] = [index[p] for p in paths]
    return splits


def split_image_paths(folder: Path, dataset_root: Path, name: str) -> list[Path]:
    """The image files `<folder>/<name>.csv` lists, absolute, without reading any labels (for
    commands that only need a few images, such as the export parity check).

    Args:
        folder: the split folder (made by `dfseg split`).
        dataset_root: the dataset folder the listed paths are relative to (for a COCO JSON
            file, its folder).
        name: "train", "val" or "test"; a missing list gives [].
    """
    root = dataset_root if dataset_root.is_dir() else dataset_root.parent
    return [root / path for path in _read_csv(folder / f"{name}.csv", required=False)]


def _read_csv(path: Path, required: bool) -> list[str]:
    if not path.is_file():
        if required:
            raise SplitError(f"{path} does not exist; run `dfseg split` first")
        return []
    try:
        frame = pl.read_csv(path, schema_overrides={IMAGE_COLUMN: pl.String})
    except pl.exceptions.NoDataError:
        return []
    if IMAGE_COLUMN not in frame.columns:
        raise SplitError(f"{path}: no `{IMAGE_COLUMN}` column (found {frame.columns})")
    return [str(p) for p in frame[IMAGE_COLUMN].drop_nulls().to_list()]
