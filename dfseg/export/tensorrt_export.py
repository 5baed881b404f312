"""TensorRT engine from the exported ONNX (TensorRT >= 10 Python API): FP32, or FP16 with every
normalisation layer pinned to FP32 (D-FINE's LayerNorms collapse in FP16), an optimisation
profile for dynamic batch, written as a serialized engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dfseg.export.errors import ExportError
from dfseg.runtime.backends.base import INPUT_NAME
from dfseg.runtime.backends.tensorrt_backend import import_tensorrt

ENGINE_FILE = "model.engine"
WORKSPACE_BYTES = 4 << 30


def _parse_onnx(trt: Any, builder: Any, logger: Any, onnx_path: Path) -> Any:
    flags = 0
    if int(trt.__version__.split(".")[0]) < 10:  # explicit batch is the only mode from 10 on
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes(), path=str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT could not parse {onnx_path}: {errors}")
    return network


def _pin_normalisation_to_fp32(trt: Any, network: Any) -> int:
    """Force FP32 compute and outputs on normalisation layers; returns how many were pinned."""
    pinned = 0
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        if layer.type == trt.LayerType.NORMALIZATION:
            layer.precision = trt.float32
            for output in range(layer.num_outputs):
                layer.set_output_type(output, trt.float32)
            pinned += 1
    return pinned


def export_tensorrt(
    onnx_path: Path,
    engine_path: Path,
    image_size: tuple[int, int],
    batch: int,
    dynamic_batch: bool,
    half: bool,
) -> Path:
    """Build and serialize a TensorRT engine on the current GPU.

    Args:
        onnx_path: the source ONNX file (exported with a dynamic batch when `dynamic_batch`).
        engine_path: the .engine file to write.
        image_size: (height, width) of the input.
        batch: the static batch, or the largest batch of the dynamic profile.
        dynamic_batch: build a profile for batches 1..batch.
        half: allow FP16 kernels (normalisation stays FP32).

    Returns:
        `engine_path`.
    """
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = _parse_onnx(trt, builder, logger, onnx_path)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if half:
        config.set_flag(trt.BuilderFlag.FP16)
        if _pin_normalisation_to_fp32(trt, network):
            config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    if dynamic_batch:
        height, width = image_size
        profile = builder.create_optimization_profile()
        profile.set_shape(
            INPUT_NAME, (1, 3, height, width), (batch, 3, height, width), (batch, 3, height, width)
        )
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"TensorRT failed to build an engine from {onnx_path} (see its log)")
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    engine_path.write_bytes(bytes(serialized))
    return engine_path
