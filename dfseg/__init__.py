"""dfseg: train, export and deploy D-FINE detectors with an instance segmentation head.

The package imports nothing heavy at import time; `dfseg.load` pulls in the runtime on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from dfseg.runtime.predictor import Predictor

__all__ = ["__version__", "load"]


def load(artifact: Any, **kwargs: Any) -> Predictor:
    """Load a trained or exported model for inference.

    Args:
        artifact: a run folder, a `best.pt`/`last.pt` checkpoint, an `.onnx` file, an OpenVINO
            `.xml` file or a TensorRT `.engine` file. The backend is chosen from the file type and
            the manifest next to it.
        **kwargs: forwarded to `dfseg.runtime.predictor.load_predictor` (backend, device, conf,
            class_conf, threads, precision, rect, ...).

    Returns:
        A `Predictor`: call it on images (paths or HWC BGR arrays) to get `Detections`.
    """
    from dfseg.runtime.predictor import load_predictor

    return load_predictor(artifact, **kwargs)
