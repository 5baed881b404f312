"""Duplicate search speed: fingerprint N JPEGs and group them, as `dfseg check` and `dfseg split`
do. The images are generated once (640x480 JPEGs of random shapes on noise, 1% planted
re-encoded copies) into a cache folder, then the search is timed in fresh processes.

    python benchmarks/bench_duplicates.py --images 10000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np


def make_images(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        path = folder / f"{index:06d}.jpg"
        paths.append(path)
        if path.is_file():
            continue
        if index % 100 == 99:  # a planted near copy of the previous image
            image = cv2.imread(str(paths[index - 1]))
            cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 60])
            continue
        image = rng.integers(0, 60, (480, 640, 3), dtype=np.uint8)
        for _ in range(4):
            x, y = (int(v) for v in rng.integers(0, 560, 2))
            color = tuple(int(c) for c in rng.integers(80, 255, 3))
            cv2.rectangle(image, (x, y % 400), (x + 80, y % 400 + 80), color, -1)
        cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return paths


def search(folder: Path) -> dict[str, float]:
    from dfseg.data.duplicates import fingerprint_images, group_duplicates

    paths = sorted(folder.glob("*.jpg"))
    started = time.perf_counter()
    prints = fingerprint_images(paths)
    hashed = time.perf_counter()
    groups = group_duplicates(prints)
    grouped = time.perf_counter()
    return {"images": len(paths), "fingerprint_s": hashed - started,
            "group_s": grouped - hashed, "groups": len(groups)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path("bench-duplicates-images"))
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(search(args.child)))
        return
    from dfseg.runtime.threads import cpu_model

    make_images(args.cache / str(args.images), args.images)
    results = []
    for _ in range(args.runs):  # fresh processes: a cold page cache is not simulated
        output = subprocess.run(
            [sys.executable, __file__, "--child", str(args.cache / str(args.images))],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        results.append(json.loads(output.strip().splitlines()[-1]))
    fingerprint = statistics.median(r["fingerprint_s"] for r in results)
    group = statistics.median(r["group_s"] for r in results)
    print(f"CPU: {cpu_model()}; {results[0]['images']} images, {results[0]['groups']} groups")
    print(f"median of {args.runs}: fingerprint {fingerprint:.1f} s, group {group:.2f} s, "
          f"total {fingerprint + group:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
