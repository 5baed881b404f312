"""`run_batching`: throughput and latency per batch size, a check that batched outputs equal
batch-1 outputs, and the recommended batch size.

Each batch size gets warm-up calls, then `repeats` timed calls of a full batch of real images
(pre-processing, inference and post-processing, as `Predictor.predict_arrays` runs them).
Throughput is batch size / median batch time. The recommendation is the smallest batch size
whose outputs match and whose throughput is within `THROUGHPUT_TOLERANCE` of the best: beyond
that, larger batches only add latency.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from dfseg.analysis.batching_plot import plot_batching
from dfseg.analysis.tables import write_csv
from dfseg.runtime.predictor import Predictor
from dfseg.structures import Detections
from dfseg.structures.progress import ProgressCallback, ProgressEvent, report

BATCHING_CSV = "batching.csv"
PLOT_FILE = "throughput.png"
THROUGHPUT_TOLERANCE = 0.05
SCORE_TOLERANCE = 1e-3
BOX_TOLERANCE_PX = 0.1
BATCHING_COLUMNS = (
    "batch_size", "status", "images_per_second", "ms_per_image", "batch_ms_median",
    "batch_ms_p95", "matches_batch1", "max_score_diff", "max_box_diff_px", "reason",
)  # fmt: skip


class BatchRow(BaseModel):
    """One batch size.

    Attributes:
        batch_size: images per call.
        status: "ok", "mismatch" (outputs differ from batch 1) or "failed" (could not run).
        images_per_second: batch size / median batch time.
        ms_per_image: median batch time / batch size.
        batch_ms_median, batch_ms_p95: time of one call (what each image of the batch waits).
        matches_batch1: every image's detections equal its batch-1 detections within tolerance.
        max_score_diff, max_box_diff_px: the largest differences found.
        reason: why the status is not ok.
    """

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    batch_size: int
    status: Literal["ok", "mismatch", "failed"] = "ok"
    images_per_second: float | None = None
    ms_per_image: float | None = None
    batch_ms_median: float | None = None
    batch_ms_p95: float | None = None
    matches_batch1: bool | None = None
    max_score_diff: float | None = None
    max_box_diff_px: float | None = None
    reason: str | None = None


class BatchingReport(BaseModel):
    """What `dfseg batching` measured.

    Attributes:
        artifact, backend, device, precision: what ran.
        images: distinct images cycled through; warmup, repeats: calls per batch size.
        rows: one per batch size, ascending.
        recommended_batch: see the module docstring (None when nothing ran).
        recommendation: one sentence on why.
        out_dir: batching.csv and the throughput plot.
    """

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    artifact: str
    backend: str
    device: str
    precision: str
    images: int
    warmup: int
    repeats: int
    rows: list[BatchRow]
    recommended_batch: int | None
    recommendation: str
    out_dir: str


def run_batching(
    predictor: Predictor,
    images_bgr: Sequence[np.ndarray],
    batch_sizes: Sequence[int],
    out_dir: Path,
    warmup: int = 2,
    repeats: int = 5,
    progress: ProgressCallback | None = None,
) -> BatchingReport:
    """Sweep batch sizes (see the module docstring).

    Args:
        predictor: the model, with its deployment settings.
        images_bgr: [H, W, 3] uint8 BGR images (cycled to fill larger batches).
        batch_sizes: sizes to try, e.g. 1, 2, 4, 8.
        out_dir: an existing empty folder for the CSV and the plot.
        warmup: untimed calls per batch size; repeats: timed calls per batch size.
        progress: optional callback, one event per batch size.
    """
    sizes = sorted(set(batch_sizes))
    fixed = predictor.backend.fixed_batch
    reference = [predictor.predict_arrays([image])[0] for image in images_bgr]
    rows = []
    for index, size in enumerate(sizes):
        report(progress, ProgressEvent("batching", index, len(sizes), info={"batch": size}))
        if fixed is not None and size != fixed:
            reason = f"the artifact has a static batch of {fixed}; export with --dynamic-batch"
            rows.append(BatchRow(batch_size=size, status="failed", reason=reason))
            continue
        rows.append(_measure(predictor, images_bgr, reference, size, warmup, repeats))
    report(progress, ProgressEvent("batching", len(sizes), len(sizes)))
    recommended, why = _recommend(rows)
    result = BatchingReport(
        artifact=str(predictor.backend.path),
        backend=predictor.backend.name,
        device=predictor.backend.info.get("device", "cpu"),
        precision=predictor.backend.info.get("precision", predictor.manifest.precision),
        images=len(images_bgr),
        warmup=warmup,
        repeats=repeats,
        rows=rows,
        recommended_batch=recommended,
        recommendation=why,
        out_dir=str(out_dir),
    )
    write_csv(out_dir / BATCHING_CSV, BATCHING_COLUMNS, [row.model_dump() for row in rows])
    plot_batching(result, out_dir / PLOT_FILE)
    return result


def _measure(
    predictor: Predictor,
    images_bgr: Sequence[np.ndarray],
    reference: Sequence[Detections],
    size: int,
    warmup: int,
    repeats: int,
) -> BatchRow:
    """Time one batch size and compare its outputs with the batch-1 reference."""
    indices = [i % len(images_bgr) for i in range(size)]
    batch = [images_bgr[i] for i in indices]
    try:
        for _ in range(warmup):
            predictor.predict_arrays(batch)
        seconds, outputs = [], []
        for _ in range(repeats):
            before = predictor.times.preprocess + predictor.times.inference
            before += predictor.times.postprocess
            outputs = predictor.predict_arrays(batch)
            after = predictor.times.preprocess + predictor.times.inference
            seconds.append(after + predictor.times.postprocess - before)
    except Exception as exc:  # out of memory or a backend limit: a result, not a crash
        return BatchRow(batch_size=size, status="failed", reason=f"{type(exc).__name__}: {exc}")
    score_diff, box_diff, same = _compare([reference[i] for i in indices], outputs)
    median_ms = float(np.median(seconds)) * 1000
    return BatchRow(
        batch_size=size,
        status="ok" if same else "mismatch",
        images_per_second=1000 * size / median_ms,
        ms_per_image=median_ms / size,
        batch_ms_median=median_ms,
        batch_ms_p95=float(np.percentile(seconds, 95)) * 1000,
        matches_batch1=same,
        max_score_diff=score_diff,
        max_box_diff_px=box_diff,
        reason=None if same else "batched detections differ from batch-1 detections",
    )


def _compare(
    reference: Sequence[Detections], batched: Sequence[Detections]
) -> tuple[float, float, bool]:
    """(max score difference, max box difference in px, all equal within tolerance).

    Detections are paired as sets, not by position: an untrained or uncertain model has many
    near-equal scores, whose order float rounding may swap between batch sizes.
    """
    score_diff, box_diff, same = 0.0, 0.0, True
    for expected, actual in zip(reference, batched, strict=True):
        if len(expected) != len(actual):
            same = False
            continue
        pair_score, pair_box = _pair_differences(expected, actual)
        score_diff, box_diff = max(score_diff, pair_score), max(box_diff, pair_box)
    same &= score_diff <= SCORE_TOLERANCE and box_diff <= BOX_TOLERANCE_PX
    return score_diff, box_diff, same


def _pair_differences(expected: Detections, actual: Detections) -> tuple[float, float]:
    """Greedily pair each expected detection with the closest unpaired actual one of the same
    class and score (within tolerance); (max score diff, max box diff), inf when one is left."""
    free = np.ones(len(actual), bool)
    score_diff, box_diff = 0.0, 0.0
    for index in range(len(expected)):
        scores = np.abs(actual.scores - expected.scores[index])  # [N]
        boxes = np.abs(actual.boxes_xyxy - expected.boxes_xyxy[index]).max(1)  # [N]
        candidate = free & (actual.labels == expected.labels[index])
        candidate &= scores <= SCORE_TOLERANCE
        if not candidate.any():
            return float("inf"), float("inf")
        best = int(np.argmin(np.where(candidate, boxes, np.inf)))
        free[best] = False
        score_diff, box_diff = (
            max(score_diff, float(scores[best])),
            max(box_diff, float(boxes[best])),
        )
    return score_diff, box_diff


def _recommend(rows: Sequence[BatchRow]) -> tuple[int | None, str]:
    usable = [r for r in rows if r.status == "ok" and r.images_per_second is not None]
    if not usable:
        return None, "no batch size ran with outputs equal to batch 1"
    best = max(r.images_per_second or 0.0 for r in usable)
    chosen = next(
        r for r in usable if (r.images_per_second or 0.0) >= best * (1 - THROUGHPUT_TOLERANCE)
    )
    return chosen.batch_size, (
        f"batch {chosen.batch_size}: {chosen.images_per_second:.1f} images/s, within "
        f"{THROUGHPUT_TOLERANCE:.0%} of the best ({best:.1f}) at the lowest latency "
        f"({chosen.batch_ms_median:.1f} ms per call)"
    )
