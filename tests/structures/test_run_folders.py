"""Numbered output folders are created atomically and found again by their highest index."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dfseg.structures.run_folders import create_numbered_dir, latest_numbered_dir


def test_concurrent_creators_never_share_a_folder(tmp_path: Path) -> None:
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "results.csv").write_text("mine")
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda _: create_numbered_dir(tmp_path, "bench"), range(16)))
    assert len(set(made)) == 16
    assert sorted(p.name for p in made) == sorted(f"bench-{i}" for i in range(2, 18))
    assert (tmp_path / "bench" / "results.csv").read_text() == "mine"


def test_latest_is_by_number_not_by_name_and_needs_the_marker(tmp_path: Path) -> None:
    for name in ("exp", "exp-2", "exp-10", "exp-11", "exp-old", "val-20"):
        (tmp_path / name).mkdir()
    for name in ("exp", "exp-2", "exp-10", "val-20"):
        (tmp_path / name / "last.pt").write_bytes(b"x")
    (tmp_path / "exp-12").write_text("a file, not a run")
    assert latest_numbered_dir(tmp_path, "exp", "last.pt") == tmp_path / "exp-10"
    assert latest_numbered_dir(tmp_path, "val", "last.pt") == tmp_path / "val-20"
    assert latest_numbered_dir(tmp_path, "exp", "best.pt") is None
    assert latest_numbered_dir(tmp_path / "absent", "exp", "last.pt") is None
