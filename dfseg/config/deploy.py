"""The `export:`, `infer:` and `bench:` sections of the project file."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from dfseg.config.base import Section
from dfseg.config.choices import Backend, ExportFormat


def _default_formats() -> list[ExportFormat]:
    return ["onnx", "openvino"]


class QuantizeConfig(Section):
    """OpenVINO INT8 post-training quantization with NNCF."""

    mode: Literal["basic", "accuracy"] = Field(
        "accuracy", description="basic: nncf.quantize; accuracy: quantize_with_accuracy_control."
    )
    max_drop: float = Field(0.01, ge=0, description="Largest allowed drop of `metric` (accuracy).")
    metric: Literal["f1", "map50_95", "map50"] = "f1"
    calibration_images: int = Field(300, gt=0, description="Calibration subset size (train split).")
    preset: Literal["performance", "mixed"] = "mixed"


class ExportConfig(Section):
    """What `dfseg export` writes."""

    formats: list[ExportFormat] = Field(default_factory=lambda: _default_formats())
    half: bool = Field(False, description="FP16 weights (OpenVINO compressed IR, TensorRT FP16).")
    batch: int = Field(1, gt=0, description="Static batch size (or the max with dynamic_batch).")
    dynamic_batch: bool = False
    dynamic_size: bool = Field(
        False, description="Any input height/width (rectangular inference with `infer --rect`)."
    )
    opset: int = Field(17, ge=17, le=23)
    simplify: bool = True
    top_k: int = Field(300, gt=0, le=300, description="Detections kept in the exported graph.")
    parity_images: int = Field(4, ge=1, description="Real images used by the parity check.")
    quantize: QuantizeConfig = Field(default_factory=QuantizeConfig)


class InferConfig(Section):
    """Defaults of `dfseg infer`."""

    conf: float | None = Field(
        None, ge=0, le=1, description="Score threshold; null: the run's tuned threshold."
    )
    class_conf: dict[str, float] = Field(
        default_factory=dict, description="Per-class thresholds by class name."
    )
    backend: Backend = "auto"
    batch: int = Field(1, gt=0)
    rect: bool = Field(False, description="Pad only to a multiple of 32 (letterbox models).")
    max_det: int = Field(300, gt=0, le=300)
    save_images: bool = True
    save_txt: bool = False
    save_conf: bool = False
    save_crops: bool = False
    crop_padding: int = Field(0, ge=0, description="Pixels added around each crop.")
    save_json: bool = True
    line_width: int | None = Field(None, gt=0)

    @field_validator("class_conf")
    @classmethod
    def _thresholds_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {name: conf for name, conf in value.items() if not 0 <= conf <= 1}
        if bad:
            raise ValueError(f"thresholds must be within [0, 1]; got {bad}")
        return value


class BenchConfig(Section):
    """Defaults of `dfseg bench`."""

    split: Literal["auto", "test", "val"] = Field("auto", description="auto: test, else val.")
    warmup: int = Field(5, ge=0)
    runs: int = Field(30, gt=0, description="Timed runs per format for latency.")
    threads: int | None = Field(None, gt=0, description="CPU threads; null: all cores.")
    max_drop: float | None = Field(
        None, ge=0, description="Fail when a format's metric drops more than this against torch."
    )
    max_images: int | None = Field(None, gt=0, description="Cap on images evaluated per format.")
