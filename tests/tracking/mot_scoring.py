"""MOT metrics with `motmetrics` (py-motmetrics), the reference implementation of CLEAR-MOT and
IDF1 that MOTChallenge tooling agrees with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

if not hasattr(np, "asfarray"):
    # motmetrics 1.4.0 (its newest release) still calls np.asfarray, removed in NumPy 2.
    np.asfarray = lambda a, dtype=float: np.asarray(a, dtype=dtype)  # type: ignore[attr-defined]

mm = pytest.importorskip("motmetrics")

METRICS = ["mota", "idf1", "num_switches", "num_misses", "num_false_positives", "num_objects"]


def mot_scores(ground_truth: Path, results: Path, unique_ids: bool = False) -> dict[str, float]:
    """motmetrics' scores of a MOTChallenge results file against a gt.txt (IoU >= 0.5 match).

    unique_ids: give every result row its own id first (a detector without tracking: its
    misses and false positives bound what any tracker on it can reach)."""
    truth = mm.io.loadtxt(str(ground_truth), fmt="mot15-2D")
    found = mm.io.loadtxt(str(results), fmt="mot15-2D")
    if unique_ids:
        found = found.reset_index()
        found["Id"] = np.arange(1, len(found) + 1)
        found = found.set_index(["FrameId", "Id"])
    accumulator = mm.utils.compare_to_groundtruth(truth, found, "iou", distth=0.5)
    summary = mm.metrics.create().compute(accumulator, metrics=METRICS, name="video")
    return {name: float(value) for name, value in summary.iloc[0].items()}
