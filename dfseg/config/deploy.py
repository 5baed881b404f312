"""The `export:`, `infer:` and `bench:` sections of the project file."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from dfseg.config.base import Section
from dfseg.config.choices import AttentionSum, Backend, ExportFormat, QuantizeScope, TileMerge


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
    scope: QuantizeScope = Field(
        "backbone",
        description="What may become INT8: backbone (backbone + encoder; the decoder stays "
        "floating point: measured fastest and closest to FP32), all (NNCF decides), "
        "no_attention (all but the decoder layers). Semantic models have no decoder: all.",
    )


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
    semantic_output: Literal["logits", "argmax"] = Field(
        "logits",
        description="Semantic models: output the class logits (resized to each image before "
        "the argmax, as validation scores) or the class ids (argmax in the graph: C times less "
        "output, nearest-neighbour edges).",
    )
    num_queries: int | None = Field(
        None, gt=0, le=300,
        description="Detect/segment: decode with this many of the trained queries (fewer: "
        "faster decoder, may miss objects in crowded images; measure with `dfseg bench`); "
        "null: all.",
    )  # fmt: skip
    decoder_layers: int | None = Field(
        None, gt=0,
        description="Detect/segment: stop after the first N decoder layers (each predicts, "
        "later ones refine; fewer: faster, less exact boxes); null: all.",
    )  # fmt: skip
    attention_sum: AttentionSum = Field(
        "levels",
        description="Detect/segment: the exported decoder's deformable attention sums its "
        "samples per feature level ('levels': no Concat, faster in OpenVINO) or over the "
        "levels' samples concatenated ('concat', as trained); the same values.",
    )
    quantize: QuantizeConfig = Field(default_factory=QuantizeConfig)


class TrackerConfig(Section):
    """Multi-object tracking of `infer --track` (ByteTrack)."""

    name: Literal["bytetrack"] = "bytetrack"
    high_thresh: float | None = Field(
        None, ge=0, le=1,
        description="Detections this sure are matched first and start tracks; null: the "
        "inference threshold (the tuned one, or --conf).",
    )  # fmt: skip
    low_thresh: float = Field(
        0.1, ge=0, le=1, description="Less sure detections down to this only continue tracks."
    )
    new_track_thresh: float | None = Field(
        None, ge=0, le=1, description="Score a new track needs; null: high_thresh."
    )
    match_thresh: float = Field(0.8, gt=0, le=1, description="Largest 1 - IoU of a first match.")
    track_buffer: int = Field(30, ge=1, description="Frames (at 30 fps) a lost track is kept.")


class TileConfig(Section):
    """Tiled (sliced) inference for large images and small objects."""

    size: int | None = Field(
        None, ge=32, description="Tile side in original pixels; null: no tiling."
    )
    overlap: float = Field(0.2, ge=0, lt=1, description="Overlap of neighbouring tiles.")
    whole_image: bool = Field(
        False, description="Also predict the whole image downscaled (finds large objects)."
    )
    merge: TileMerge = Field(
        "fuse", description="fuse: merge the parts of an object cut by tile borders into one "
        "detection (masks stitched); nms: keep the best-scoring copy.",
    )  # fmt: skip
    match_threshold: float = Field(
        0.5, gt=0, le=1, description="IoU (or, for parts cut by a border, intersection over the "
        "smaller box) at which two tiles' detections are one object.",
    )  # fmt: skip


class InferConfig(Section):
    """Defaults of `dfseg infer`."""

    track: bool = Field(False, description="Track objects over video frames (ids in outputs).")
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    stride: int = Field(1, ge=1, description="Predict every Nth video frame.")
    max_fps: float | None = Field(
        None, gt=0, description="Predict at most this many frames per second of video."
    )
    tile: TileConfig = Field(default_factory=TileConfig)

    conf: float | None = Field(
        None, ge=0, le=1, description="Score threshold; null: the run's tuned threshold."
    )
    class_conf: dict[str, float] = Field(
        default_factory=dict, description="Per-class thresholds by class name."
    )
    backend: Backend = "auto"
    batch: int = Field(1, gt=0)
    streams: int | None = Field(
        None,
        gt=0,
        description="OpenVINO throughput mode: N parallel inference streams (images/s over "
        "latency; the batch is at least N); null: one stream, lowest latency.",
    )
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
