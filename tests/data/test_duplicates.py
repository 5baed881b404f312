"""Exact and near-duplicate images: hashing, grouping, splits that keep copies together, and
`dfseg check` reporting copies and leaks, on generated images with planted copies."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from dfseg.cli.app import app
from dfseg.config.template import render_project_template
from dfseg.data.duplicates import fingerprint, fingerprint_images, group_duplicates, similar_pairs
from dfseg.data.synthetic import generate_synthetic_dataset

runner = CliRunner()


def _similarity(a: Path, b: Path) -> float:
    first, second = fingerprint(a), fingerprint(b)
    assert first is not None and second is not None
    if first.thumbnail is None or second.thumbnail is None:
        return float("nan")  # featureless: matched by bytes only
    return float(first.thumbnail @ second.thumbnail)


def _plant_copies(images: Path, sources: list[Path]) -> dict[str, list[Path]]:
    """Next to each source: an exact copy, a re-encoded half-size copy and a brightened one."""
    planted: dict[str, list[Path]] = {"exact": [], "near": []}
    for source in sources:
        image = cv2.imread(str(source))
        exact = images / f"{source.stem}_copy{source.suffix}"
        shutil.copyfile(source, exact)
        half = images / f"{source.stem}_half.jpg"
        small = cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(half), small, [cv2.IMWRITE_JPEG_QUALITY, 60])
        bright = images / f"{source.stem}_bright.png"
        cv2.imwrite(str(bright), cv2.convertScaleAbs(image, alpha=1.0, beta=15))
        planted["exact"].append(exact)
        planted["near"] += [half, bright]
        labels = images.parent / "labels"
        for copy in (exact, half, bright):
            shutil.copyfile(labels / f"{source.stem}.txt", labels / f"{copy.stem}.txt")
    return planted


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """A YOLO-seg dataset of 40 distinct images, 10 of which have 3 copies each."""
    root = generate_synthetic_dataset(
        tmp_path_factory.mktemp("dups") / "data", num_images=40, image_size=(240, 320), seed=2
    )
    sources = sorted((root / "images").iterdir())[:10]
    _plant_copies(root / "images", sources)
    return root, sources


def test_copies_are_similar_and_distinct_images_are_not(planted: tuple[Path, list[Path]]) -> None:
    root, sources = planted
    near = [
        _similarity(source, root / "images" / f"{source.stem}{suffix}")
        for source in sources
        for suffix in ("_half.jpg", "_bright.png")
    ]
    featureless = [s for s in sources if fingerprint(s).thumbnail is None]  # type: ignore[union-attr]
    assert np.nanmin(near) > 0.98 and len(featureless) <= 2
    distinct = sorted(p for p in (root / "images").iterdir() if "_" not in p.stem)
    similarities = [_similarity(a, b) for a, b in itertools.combinations(distinct, 2)]
    assert np.nanmax(similarities) < 0.9  # the default 0.95 separates them


def test_groups_are_exactly_the_planted_copies(planted: tuple[Path, list[Path]]) -> None:
    root, sources = planted
    paths = sorted((root / "images").iterdir())
    prints = fingerprint_images(paths)
    groups = group_duplicates(prints)
    found = sorted(sorted(paths[i].stem for i in g.indices) for g in groups)

    def copies(source: Path) -> list[str]:
        if fingerprint(source).thumbnail is None:  # type: ignore[union-attr]
            return sorted([source.stem, f"{source.stem}_copy"])  # featureless: bytes only
        return sorted([source.stem, f"{source.stem}_bright", f"{source.stem}_copy",
                       f"{source.stem}_half"])  # fmt: skip

    expected = sorted(copies(source) for source in sources)
    assert found == expected
    assert all(g.exact == (len(g.indices) == 2) for g in groups)
    exact_only = group_duplicates(prints, min_similarity=1.01)
    assert [sorted(paths[i].stem for i in g.indices) for g in exact_only] == [
        sorted([s.stem, f"{s.stem}_copy"]) for s in sources
    ]
    assert all(g.exact and g.similarity == 1.0 for g in exact_only)


def test_similar_pairs_match_brute_force_across_blocks() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(1500, 8)).astype(np.float32)  # more rows than one block
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors[1400] = vectors[3]
    pairs = {(int(i), int(j)) for i, j, _ in similar_pairs(vectors, 0.97).tolist()}
    full = vectors @ vectors.T
    brute = {(i, j) for i, j in zip(*np.nonzero(full >= 0.97), strict=True) if j > i}
    assert pairs == {(int(i), int(j)) for i, j in brute} and (3, 1400) in pairs


def _project(tmp_path: Path) -> Path:
    text = render_project_template(
        name="dups", task="segment", size="n", classes=["circle", "square", "triangle"],
        image_size=(256, 256),
    )  # fmt: skip
    tmp_path.mkdir(parents=True, exist_ok=True)
    project = tmp_path / "project.yaml"
    project.write_text(text)
    return project


def test_split_keeps_copies_together_and_check_reports_leaks(
    planted: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    root, _ = planted
    project = str(_project(tmp_path))
    data = f"data.path={root}"
    independent = "data.split.duplicate_similarity=null"  # copies split independently: leaks
    assert runner.invoke(app, ["split", project, data, independent]).exit_code == 0
    unsearched = runner.invoke(app, ["check", project, data, independent, "--splits", "--json"])
    report = json.loads(unsearched.stdout)
    assert report["duplicates"] == [] and report["leaks"] == 0  # null: no search at all

    checked = runner.invoke(app, ["check", project, data, "--splits", "--json"])
    report = json.loads(checked.stdout)
    assert len(report["duplicates"]) == 10 and report["leaks"] > 0
    assert any(issue["code"] == "split-leak" for issue in report["issues"])

    result = runner.invoke(app, ["split", project, data, "--overwrite"])
    assert result.exit_code == 0, result.output
    images = sum(len(group["paths"]) for group in report["duplicates"])
    exact = sum(group["exact"] for group in report["duplicates"])
    assert f"10 groups of copies ({images} images) were each kept within one split" in result.output
    text = runner.invoke(app, ["check", project, data, "--splits"])
    expected = f"10 groups of copies ({exact} exact, {10 - exact} near; {images} images); 0 across"
    assert expected in text.output
    assert "split-leak" not in text.output
    missing = runner.invoke(app, ["check", str(_project(tmp_path / "new")), data, "--splits"])
    assert missing.exit_code == 2 and "no split yet" in missing.output
