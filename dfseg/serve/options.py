"""What `dfseg serve` runs and its limits; travels to uvicorn's worker processes as JSON in an
environment variable (each worker loads its own model)."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

from dfseg.runtime.records import MASK_FORMATS, MaskFormat

OPTIONS_ENV = "DFSEG_SERVE_OPTIONS"


@dataclass(frozen=True)
class ServeOptions:
    """How the server loads its model and what it accepts.

    Attributes:
        artifact: a model file, export folder, run folder or project file (`resolve_artifact`).
        backend, device, threads, precision, conf: how the model is loaded (`load_predictor`;
            conf None: the manifest's tuned threshold).
        max_batch: most images per model call when requests arrive together (1: no batching,
            `dfseg serve`'s default on CPU, where batching measured no gain; clamped to what the
            artifact accepts: export with a dynamic batch to batch).
        max_wait_ms: longest a request waits for others to join its batch.
        max_body_mb: largest request body; bigger ones get 413.
        max_pixels: largest image (width x height); bigger ones get 413 before being decoded.
        masks: default mask format of segmentation responses ("polygons", "rle" or "none").
    """

    artifact: str
    backend: str | None = None
    device: str | None = None
    threads: int | None = None
    precision: str | None = None
    conf: float | None = None
    max_batch: int = 1
    max_wait_ms: float = 5.0
    max_body_mb: float = 20.0
    max_pixels: int = 40_000_000
    masks: MaskFormat = "polygons"

    def __post_init__(self) -> None:
        if self.masks not in MASK_FORMATS:
            raise ValueError(f"masks must be one of {MASK_FORMATS}, got {self.masks!r}")

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_env(cls) -> ServeOptions:
        """The options the `dfseg serve` process put in `DFSEG_SERVE_OPTIONS`."""
        text = os.environ.get(OPTIONS_ENV)
        if not text:
            raise RuntimeError(f"{OPTIONS_ENV} is not set; start workers with `dfseg serve`")
        return cls(**json.loads(text))
