"""`ExportOptions`: what one `dfseg export` call makes, and the folder each artifact goes to."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from dfseg.config.choices import AttentionSum, ExportFormat
from dfseg.config.deploy import ExportConfig
from dfseg.config.errors import describe_validation_error
from dfseg.export.errors import ExportError
from dfseg.structures.manifest import Precision

DEFAULT_ATTENTION_SUM: AttentionSum = "levels"
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("onnx", "openvino", "trt")
# Export format name -> the manifest's `format`.
MANIFEST_FORMATS = {"onnx": "onnx", "openvino": "openvino", "trt": "tensorrt"}


def _default_formats() -> list[ExportFormat]:
    return ["onnx"]


class ExportOptions(BaseModel):
    """Options of an export run (defaults mirror the project's `export:` section).

    Attributes:
        formats: artifacts to write, in order; ONNX is the source of the others.
        half: FP16 weights for OpenVINO (compressed IR) and TensorRT; ONNX stays FP32.
        batch: static batch size, or the largest batch (TensorRT profile) with `dynamic_batch`.
        dynamic_batch: any batch size at run time.
        dynamic_size: any input height and width (multiples of 32) at run time, for rectangular
            inference of letterboxed models (not for TensorRT).
        image_size: (height, width) of the exported input; None: the checkpoint's.
        opset: ONNX opset (>= 17: native LayerNormalization).
        simplify: run onnxslim on the ONNX graph.
        top_k: detections per image in the graph's outputs.
        parity_images: images the parity check runs.
        force: replace existing export folders.
        threads: CPU threads for the parity runs (None: all).
        semantic_output: semantic models: "logits" or "argmax" (see `SemanticGraph`); recorded
            as the manifest's output name.
        num_queries: detect/segment: decode with fewer queries than trained (None: all).
        decoder_layers: detect/segment: stop after the first N decoder layers (None: all).
        attention_sum: detect/segment: the graph's deformable attention sums its samples per level
            ("levels", no Concat; faster in OpenVINO) or over all levels' samples concatenated
            ("concat", as trained); the same values (`DFine.set_attention_sum`).
    """

    model_config = ConfigDict(extra="forbid")

    formats: list[ExportFormat] = Field(default_factory=_default_formats)
    half: bool = False
    batch: int = Field(1, gt=0)
    dynamic_batch: bool = False
    dynamic_size: bool = False
    image_size: tuple[int, int] | None = None
    opset: int = Field(17, ge=17, le=23)
    simplify: bool = True
    top_k: int = Field(300, gt=0, le=300)
    parity_images: int = Field(4, ge=1)
    force: bool = False
    threads: int | None = Field(None, gt=0)
    semantic_output: Literal["logits", "argmax"] = "logits"
    num_queries: int | None = Field(None, gt=0)
    decoder_layers: int | None = Field(None, gt=0)
    attention_sum: AttentionSum = DEFAULT_ATTENTION_SUM

    @field_validator("image_size")
    @classmethod
    def _multiple_of_32(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and any(side < 64 or side % 32 for side in value):
            raise ValueError(f"image size sides must be multiples of 32 and >= 64, got {value}")
        return value

    @model_validator(mode="after")
    def _tensorrt_has_static_sizes(self) -> ExportOptions:
        if self.dynamic_size and "trt" in self.formats:
            raise ValueError("dynamic_size is not supported for TensorRT engines (static H, W)")
        return self

    @field_validator("formats")
    @classmethod
    def _unique(cls, value: list[ExportFormat]) -> list[ExportFormat]:
        if not value:
            raise ValueError("give at least one format")
        return list(dict.fromkeys(value))


def artifact_precision(fmt: ExportFormat, half: bool) -> Precision:
    """Weights precision of an artifact: ONNX is always FP32; --half applies to the others."""
    return "fp16" if half and fmt != "onnx" else "fp32"


def artifact_folder_name(
    fmt: ExportFormat, options: ExportOptions, trained_hw: tuple[int, int], semantic: bool = False
) -> str:
    """`<format>-<precision>-b<N>` or `...-dyn`, plus `-<H>x<W>` when the input size differs
    from the training size (e.g. `openvino-fp16-b1`, `onnx-fp32-dyn-480x640`), and `-argmax`
    for a semantic model exported with class ids."""
    name = f"{fmt}-{artifact_precision(fmt, options.half)}"
    name += "-dyn" if options.dynamic_batch else f"-b{options.batch}"
    if options.dynamic_size:
        name += "-anysize"
    if semantic and options.semantic_output == "argmax":
        name += "-argmax"
    if options.image_size is not None and tuple(options.image_size) != tuple(trained_hw):
        name += f"-{options.image_size[0]}x{options.image_size[1]}"
    if options.num_queries is not None:
        name += f"-q{options.num_queries}"
    if options.decoder_layers is not None:
        name += f"-l{options.decoder_layers}"
    if options.attention_sum != DEFAULT_ATTENTION_SUM and not semantic:
        name += f"-{options.attention_sum}"
    return name


def options_from_config(config: ExportConfig | None, **overrides: object) -> ExportOptions:
    """`ExportOptions` from a project's `export:` section (defaults when None), with the given
    keyword overrides (None values ignored; `formats=["all"]` means every format)."""
    base: dict[str, object] = {}
    if config is not None:
        base = {
            "formats": list(config.formats),
            "half": config.half,
            "batch": config.batch,
            "dynamic_batch": config.dynamic_batch,
            "dynamic_size": config.dynamic_size,
            "opset": config.opset,
            "simplify": config.simplify,
            "top_k": config.top_k,
            "parity_images": config.parity_images,
            "semantic_output": config.semantic_output,
            "num_queries": config.num_queries,
            "decoder_layers": config.decoder_layers,
            "attention_sum": config.attention_sum,
        }
    base.update({key: value for key, value in overrides.items() if value is not None})
    formats = base.get("formats")
    if isinstance(formats, list) and "all" in formats:
        base["formats"] = [fmt for fmt in EXPORT_FORMATS if fmt != "trt" or _has_tensorrt()]
    try:
        return ExportOptions.model_validate(base)
    except ValidationError as exc:
        raise ExportError(f"invalid export options: {describe_validation_error(exc)}") from None


def _has_tensorrt() -> bool:
    """TensorRT is installed and a CUDA GPU is visible ("all" then includes trt)."""
    import importlib.util

    import torch

    return importlib.util.find_spec("tensorrt") is not None and torch.cuda.is_available()
