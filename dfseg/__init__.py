"""dfseg: train, export and deploy D-FINE detectors with an instance segmentation head.

The package imports nothing heavy at import time; `dfseg.load` pulls in the runtime on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from dfseg.runtime.predictor import Predictor

__all__ = ["__version__", "load"]


def load(
    artifact: str | Path,
    backend: str | None = None,
    device: str | None = None,
    conf: float | None = None,
    class_conf: Mapping[str, float] | None = None,
    threads: int | None = None,
    precision: str | None = None,
    rect: bool = False,
    max_det: int = 300,
    batch_size: int | None = None,
    streams: int | None = None,
) -> Predictor:
    """Load a trained or exported model for inference (Ultralytics' `YOLO("best.pt")`).

        model = dfseg.load("runs/pets/exp")             # best.pt on torch
        detections = model("dog.jpg", conf=0.4)         # path, BGR array or PIL image
        annotated = detections.plot()                   # [H, W, 3] BGR with masks and boxes

    Args:
        artifact: a run folder (its best.pt, or with `backend` its newest export for it), a
            project file (its newest run), a `best.pt`/`last.pt`, an `.onnx`, an OpenVINO `.xml`
            or a TensorRT `.engine` file, or an export folder.
        backend: "torch", "onnxruntime", "openvino" or "tensorrt"; None or "auto": from the
            file type.
        device: "cpu", "cuda", "cuda:1" (torch, onnxruntime, tensorrt) or an OpenVINO device
            ("CPU", "GPU"); None: the backend's default.
        conf: score threshold; None: the one tuned after training (best F1, in the manifest).
        class_conf: per-class thresholds by class name, e.g. {"dog": 0.6}.
        threads: CPU inference threads; None: the backend's default (all cores).
        precision: OpenVINO compute precision: "fp32", "bf16", "fp16" or "default"; None: what
            the export recorded.
        rect: letterboxed models: pad each image only to a multiple of 32 (torch, or an export
            made with --dynamic-size).
        max_det: detections kept per image.
        batch_size: images per backend call in `predict_batch`; None: the artifact's batch.
        streams: OpenVINO throughput mode: N streams run the images of a `predict_batch` batch
            in parallel (more images/s, each waits longer); None: lowest latency.

    Returns:
        A `Predictor`: call it on one image or a list (`conf`, `classes`, `max_det` per call) to
        get `Detections` in original-image pixels: `boxes_xyxy`, `scores`, `labels`, `names`,
        `masks` [N, H, W] bool, `xy` (mask outlines), `plot()`.
    """
    from dfseg.runtime.predictor import load_predictor

    return load_predictor(
        artifact, backend=backend, device=device, conf=conf, class_conf=class_conf,
        threads=threads, precision=precision, rect=rect, max_det=max_det, batch_size=batch_size,
        streams=streams,
    )  # fmt: skip
