"""`ArtifactManifest`: what a checkpoint or exported model is, so `infer`/`bench` need only it.

Checkpoints carry it under the key `manifest`; exported artifacts have it as `manifest.json` in
their folder. It holds plain types only.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dfseg.config.choices import AttentionSum, Decode
from dfseg.config.tasks import Task
from dfseg.config.variants import ModelSize
from dfseg.errors import DfsegError

DEFAULT_QUERIES = 300  # official D-FINE
ArtifactFormat = Literal["checkpoint", "onnx", "openvino", "tensorrt"]
Precision = Literal["fp32", "fp16", "bf16", "int8", "default"]
MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1


class ManifestError(DfsegError):
    """A manifest that is missing or malformed."""


class ModelDescription(BaseModel):
    """What a network is: enough to rebuild it (`dfseg.nn.build_model(**description)`).

    The one description of a model: a `DFine` carries it (`model.description`), checkpoints and
    exports store it in their manifest.

    Attributes:
        size: a D-FINE size of `dfseg.config.variants.MODEL_VARIANTS`.
        num_classes: number of classes (ids 0..num_classes-1).
        task: a task of `dfseg.config.tasks.TASKS`.
        image_size: (height, width) of the input the model is built for, multiples of 32.
        num_queries: decoder queries (official D-FINE: 300).
        decoder_layers: inference uses the first N decoder layers (D-FINE's `eval_idx` + 1:
            every layer predicts, later ones refine); None: all of the size's layers.
        semantic_context: semantic task: the head's context block ("ppm": pyramid pooling).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: ModelSize
    num_classes: int = Field(gt=0)
    task: Task = "detect"
    image_size: tuple[int, int] = (640, 640)
    num_queries: int = Field(DEFAULT_QUERIES, gt=0, le=DEFAULT_QUERIES)
    decoder_layers: int | None = Field(None, gt=0)
    semantic_context: Literal["none", "ppm"] = "none"


class Preprocessing(BaseModel):
    """How images become the network input (shared by every backend)."""

    model_config = ConfigDict(extra="forbid")

    input_size: tuple[int, int] = Field(description="(height, width) of the network input.")
    keep_ratio: bool = Field(False, description="Letterbox with centred padding, else stretch.")
    pad_value: int = 114
    color: Literal["RGB"] = "RGB"
    scale: float = Field(1 / 255, description="Pixel values are multiplied by this.")


class ArtifactManifest(BaseModel):
    """Self-description of a checkpoint or exported model."""

    model_config = ConfigDict(extra="forbid")

    manifest_version: int = MANIFEST_VERSION
    format: ArtifactFormat
    precision: Precision = "fp32"
    model: ModelDescription
    class_names: list[str]
    preprocessing: Preprocessing
    threshold: float = Field(0.5, description="Confidence threshold tuned after training.")
    threshold_source: str = Field("default", description="How the threshold was chosen.")
    batch: int = Field(1, description="Static batch size, or the largest with dynamic_batch.")
    dynamic_batch: bool = False
    dynamic_size: bool = Field(False, description="Any input size (rectangular inference).")
    top_k: int = Field(300, description="Detections per image the model outputs.")
    decode: Decode = Field("topk", description="How the top_k are chosen (nn.postprocess).")
    nms_iou: float = Field(0.7, description="IoU of decode 'nms'.")
    attention_sum: AttentionSum = Field(
        "concat",
        description="How the graph's deformable attention sums its samples (export.attention_sum; "
        "artifacts from before it: concat).",
    )
    outputs: list[str] = Field(default_factory=list, description="Output names, in order.")
    source_checkpoint: str | None = None
    source_sha256: str | None = None
    runtime_hints: dict[str, str] = Field(
        default_factory=dict, description="Backend settings, e.g. OpenVINO inference precision."
    )
    metrics: dict[str, float] = Field(default_factory=dict)
    dfseg_version: str = ""
    created: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat())

    def write(self, folder: Path) -> Path:
        """Write `manifest.json` into `folder`; returns its path."""
        path = folder / MANIFEST_FILE
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> ArtifactManifest:
        """Read a `manifest.json` (or the one in a folder)."""
        file = path / MANIFEST_FILE if path.is_dir() else path
        if not file.is_file():
            raise ManifestError(f"{file}: manifest not found; export the model with `dfseg export`")
        try:
            return cls.model_validate(json.loads(file.read_text(encoding="utf-8")))
        except (ValueError, OSError) as exc:
            raise ManifestError(f"{file}: not a valid dfseg manifest ({exc})") from None
