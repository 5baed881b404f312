"""`BenchReport`: one row per artifact x inference precision x device, and `bench.csv`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from dfseg.analysis.latency import STAGES, Latency
from dfseg.analysis.tables import Cell, write_csv
from dfseg.metrics import GroupMetrics
from dfseg.metrics.semantic import SemanticScores

Status = Literal["ok", "validation_failed", "failed"]
DropMetric = Literal["map50_95", "map50", "f1", "miou"]
ACCURACY_FIELDS = ("map50_95", "map50", "f1", "precision", "recall")
SEMANTIC_FIELDS = ("miou", "mpa", "mean_precision", "pixel_accuracy")


class BenchRow(BaseModel):
    """One benchmarked configuration.

    Attributes:
        name: unique label ("torch cpu", "openvino-fp32-b1:default cpu", ...).
        format, weights_precision, backend, device: what ran where.
        inference_precision: what the backend computed in (OpenVINO's resolved precision,
            "bf16" for the default hint on this CPU), None when it never ran.
        artifact: the model file.
        status: "ok"; "validation_failed" (it ran, but its accuracy dropped more than allowed
            against torch FP32, or it found nothing); "failed" (it could not run; see reason).
        reason: why the status is not ok.
        size_mb: model files on disk.
        box, mask: metrics at the run's threshold (mask only for segmentation models).
        semantic: semantic models' mIoU, mPA, mean precision and pixel accuracy.
        metric: the compared metric's value; drop: torch FP32's value minus this one.
        latency: per-stage median/p95 at batch 1 and FPS.
    """

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    name: str
    format: str
    weights_precision: str
    backend: str
    device: str
    inference_precision: str | None = None
    artifact: str | None = None
    status: Status = "ok"
    reason: str | None = None
    size_mb: float | None = None
    box: GroupMetrics | None = None
    mask: GroupMetrics | None = None
    semantic: SemanticScores | None = None
    metric: float | None = None
    drop: float | None = None
    latency: Latency | None = None


class BenchReport(BaseModel):
    """What `dfseg bench` measured.

    Attributes:
        run_dir: the run; split and images: what accuracy was measured on.
        threshold: the run's tuned confidence threshold (P/R/F1 use it; mAP does not).
        metric: the compared metric, of masks for segmentation models, else of boxes (mIoU
            for semantic models).
        metric_group: "mask", "box" or "semantic".
        max_drop: the allowed drop (None: no limit).
        rows: one per configuration, in run order.
        out_dir: bench.csv, the plot and prediction images.
        tiling: how images were tiled ("tiles 640 px, overlap 0.2, fuse"), None: whole images.
    """

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    run_dir: str
    split: str
    images: int
    threshold: float
    metric: DropMetric
    metric_group: Literal["box", "mask", "semantic"]
    max_drop: float | None
    rows: list[BenchRow]
    out_dir: str
    tiling: str | None = None

    @property
    def passed(self) -> bool:
        """No configuration failed validation (failures to run are reported, not judged)."""
        return all(row.status != "validation_failed" for row in self.rows)


BENCH_COLUMNS = (
    "name", "format", "weights_precision", "inference_precision", "backend", "device", "status",
    "reason", "size_mb",
    *(f"box_{f}" for f in ACCURACY_FIELDS), *(f"mask_{f}" for f in ACCURACY_FIELDS),
    *SEMANTIC_FIELDS, "metric", "drop",
    *(f"{s}_ms_{q}" for s in STAGES for q in ("median", "p95")), "fps", "artifact",
)  # fmt: skip


def write_bench_csv(report: BenchReport, path: Path) -> Path:
    """bench.csv: one row per configuration, fixed columns (empty where not applicable)."""
    return write_csv(path, BENCH_COLUMNS, [_flat(row) for row in report.rows])


def _flat(row: BenchRow) -> dict[str, Cell]:
    flat: dict[str, Cell] = {
        key: getattr(row, key)
        for key in (
            "name", "format", "weights_precision", "inference_precision", "backend", "device",
            "status", "reason", "size_mb", "metric", "drop", "artifact",
        )
    }  # fmt: skip
    for prefix, group in (("box", row.box), ("mask", row.mask)):
        for field in ACCURACY_FIELDS:
            flat[f"{prefix}_{field}"] = None if group is None else getattr(group, field)
    for field in SEMANTIC_FIELDS:
        flat[field] = None if row.semantic is None else getattr(row.semantic, field)
    if row.latency is not None:
        for stage, values in row.latency.stages.items():
            flat[f"{stage}_ms_median"] = values.median_ms
            flat[f"{stage}_ms_p95"] = values.p95_ms
        flat["fps"] = row.latency.fps
    return flat
