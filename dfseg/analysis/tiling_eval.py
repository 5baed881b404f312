"""`compare_tiling`: one model evaluated on a split with whole images and tile by tile, so a user
sees whether tiling helps their data (`dfseg val --tile`)."""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from dfseg.analysis.predict import predict_for_evaluation
from dfseg.analysis.split_data import SplitImages
from dfseg.metrics import build_eval_report
from dfseg.metrics.report import GroupMetrics
from dfseg.runtime.predictor import load_predictor
from dfseg.runtime.tiling import TileSettings, describe_tiling
from dfseg.structures.progress import ProgressCallback


class TilingRow(BaseModel):
    """One way of predicting: its metrics at the run's threshold and its speed.

    Attributes:
        name: "whole images" or the tiling (see `describe_tiling`).
        box, mask: overall metrics (mask None for detection models).
        ms_per_image: mean wall time of predicting one image (all its tiles), milliseconds.
    """

    model_config = ConfigDict(ser_json_inf_nan="strings")

    name: str
    box: GroupMetrics
    mask: GroupMetrics | None = None
    ms_per_image: float


class TilingReport(BaseModel):
    """`compare_tiling`'s answer: whole images first, then tiles."""

    artifact: str
    split: str
    images: int
    threshold: float
    rows: list[TilingRow]


def compare_tiling(
    artifact: Path,
    split: SplitImages,
    tiling: TileSettings,
    threshold: float,
    threads: int | None = None,
    progress: ProgressCallback | None = None,
) -> TilingReport:
    """Evaluate `artifact` on `split` whole and tiled (COCO mAP of the unfiltered top 100, P/R/F1
    at `threshold`), as `dfseg bench` evaluates a format.

    Args:
        artifact: a checkpoint or export (see `load_predictor`).
        split: images and ground truth.
        tiling: the tiled configuration compared with whole images.
        threshold: the run's tuned threshold, for P/R/F1.
        threads: CPU threads (None: the backend's default).
        progress: per-image events, tasks "whole images" and "tiles".
    """
    rows = []
    for name, setting in (("whole images", None), (describe_tiling(tiling), tiling)):
        predictor = load_predictor(artifact, threads=threads, tiling=setting)
        started = time.perf_counter()
        task = "tiles" if setting is not None else "whole images"
        predictions = predict_for_evaluation(predictor, split.image_paths, progress, task)
        seconds = time.perf_counter() - started
        report = build_eval_report(
            split.ground_truths, predictions, split.class_names, threshold=threshold
        )
        rows.append(
            TilingRow(
                name=name,
                box=report.overall.box,
                mask=report.overall.mask,
                ms_per_image=round(1000 * seconds / max(1, len(split.image_paths)), 1),
            )
        )
    return TilingReport(
        artifact=str(artifact),
        split=split.name,
        images=len(split.image_paths),
        threshold=threshold,
        rows=rows,
    )
