"""Latency of a `Predictor` per stage (pre-processing, inference, post-processing), measured on
real images after warm-up, reported as median and 95th percentile."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict

from dfseg.runtime.predictor import Predictor, StageTimes

STAGES = ("preprocess", "inference", "postprocess", "total")


class StageLatency(BaseModel):
    """Milliseconds of one stage over the timed runs."""

    model_config = ConfigDict(extra="forbid")

    median_ms: float
    p95_ms: float


class Latency(BaseModel):
    """Per-image latency of a predictor at batch 1.

    Attributes:
        stages: "preprocess", "inference", "postprocess", "total" -> median and p95.
        fps: images per second at the median total latency.
        runs: timed runs; warmup: untimed runs before them.
    """

    model_config = ConfigDict(extra="forbid")

    stages: dict[str, StageLatency]
    fps: float
    runs: int
    warmup: int

    @property
    def total_ms(self) -> float:
        return self.stages["total"].median_ms


@dataclass
class _Snapshot:
    preprocess: float
    inference: float
    postprocess: float

    @classmethod
    def of(cls, times: StageTimes) -> _Snapshot:
        return cls(times.preprocess, times.inference, times.postprocess)


def measure_latency(
    predictor: Predictor, images_bgr: Sequence[np.ndarray], warmup: int, runs: int
) -> Latency:
    """Time `runs` single-image calls (cycling through `images_bgr`) after `warmup` calls.

    Args:
        predictor: with its deployment settings (threshold), as users run it.
        images_bgr: [H, W, 3] uint8 BGR images, at least one.
        warmup: untimed calls first (graph compilation, caches, allocator).
        runs: timed calls.
    """
    for index in range(warmup):
        predictor.predict_arrays([images_bgr[index % len(images_bgr)]])
    samples = np.zeros((runs, 3))  # [runs, stage] seconds
    for index in range(runs):
        before = _Snapshot.of(predictor.times)
        predictor.predict_arrays([images_bgr[index % len(images_bgr)]])
        after = _Snapshot.of(predictor.times)
        samples[index] = (
            after.preprocess - before.preprocess,
            after.inference - before.inference,
            after.postprocess - before.postprocess,
        )
    per_stage = np.concatenate([samples, samples.sum(1, keepdims=True)], axis=1) * 1000  # [runs, 4]
    stages = {
        name: StageLatency(
            median_ms=float(np.median(per_stage[:, i])),
            p95_ms=float(np.percentile(per_stage[:, i], 95)),
        )
        for i, name in enumerate(STAGES)
    }
    total = stages["total"].median_ms
    return Latency(
        stages=stages, fps=1000.0 / total if total > 0 else 0.0, runs=runs, warmup=warmup
    )
