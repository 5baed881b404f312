"""ONNX export of an `InferenceGraph` (model + fused top-K postprocess) or a `SemanticGraph`:
input `images` [B, 3, H, W] float32 RGB 0..1; outputs `labels`, `boxes`, `scores` (+
`mask_logits`), or `semantic_logits` / `semantic_labels`; simplified with onnxslim, the manifest
embedded in the metadata."""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from dfseg.errors import missing_dependency
from dfseg.export.errors import ExportError
from dfseg.nn.trained import InferenceGraph, SemanticGraph
from dfseg.runtime.backends.base import INPUT_NAME
from dfseg.runtime.backends.onnxruntime_backend import METADATA_KEY

ONNX_FILE = "model.onnx"


def import_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise missing_dependency("onnx", "export", "ONNX export") from None
    return onnx


def export_onnx(
    graph: InferenceGraph | SemanticGraph,
    path: Path,
    image_size: tuple[int, int],
    batch: int,
    dynamic_batch: bool,
    dynamic_size: bool = False,
    opset: int = 17,
    simplify: bool = True,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write `graph` as an ONNX file.

    Args:
        graph: the model with its postprocess, eval mode, on CPU.
        path: the .onnx file to write.
        image_size: (height, width) of the input.
        batch: the static batch size (traced with it), or the largest batch with `dynamic_batch`.
        dynamic_batch: leave the batch dimension symbolic. The graph is traced with a batch of at
            least 2 so that no size-1 broadcast of the trace is baked in.
        dynamic_size: leave height and width symbolic (anchors and position embeddings are
            computed in the graph; see `DFine.set_dynamic_size`).
        opset: ONNX opset, >= 17.
        simplify: fold constants and fuse with onnxslim.
        metadata: string key/values stored in the model's metadata_props.

    Returns:
        `path`.
    """
    onnx = import_onnx()
    trace_batch = max(2, batch) if dynamic_batch else batch
    example = torch.rand(trace_batch, 3, *image_size)
    names = list(graph.output_names)
    dynamic_axes = _dynamic_axes(names, dynamic_batch, dynamic_size)
    buffer = io.BytesIO()
    graph.model.set_dynamic_size(dynamic_size)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about constant shapes are expected
            torch.onnx.export(
                graph, (example,), buffer,  # type: ignore[arg-type]
                dynamo=False, opset_version=opset, input_names=[INPUT_NAME],
                output_names=names, dynamic_axes=dynamic_axes, do_constant_folding=True,
            )  # fmt: skip
    finally:
        graph.model.set_dynamic_size(False)
    model = onnx.load_from_string(buffer.getvalue())
    if simplify:
        model = _simplify(model)
    if metadata:
        onnx.helper.set_model_props(model, dict(metadata))
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _dynamic_axes(
    names: list[str], dynamic_batch: bool, dynamic_size: bool
) -> dict[str, dict[int, str]] | None:
    """Symbolic dimensions of the input and outputs (None: all static)."""
    axes: dict[str, dict[int, str]] = {name: {} for name in [INPUT_NAME, *names]}
    if dynamic_batch:
        for dims in axes.values():
            dims[0] = "batch"
    if dynamic_size:
        axes[INPUT_NAME].update({2: "height", 3: "width"})
        if "mask_logits" in axes:
            axes["mask_logits"].update({2: "mask_height", 3: "mask_width"})
        if "semantic_logits" in axes:  # [B, C, H, W]
            axes["semantic_logits"].update({2: "height", 3: "width"})
        if "semantic_labels" in axes:  # [B, H, W]
            axes["semantic_labels"].update({1: "height", 2: "width"})
    return {name: dims for name, dims in axes.items() if dims} or None


def _simplify(model: Any) -> Any:
    try:
        import onnxslim
    except ImportError:
        raise missing_dependency("onnxslim", "export", "ONNX simplification") from None
    try:
        return onnxslim.slim(model)
    except Exception as exc:  # onnxslim raises assorted errors on graphs it cannot handle
        raise ExportError(
            f"onnxslim failed to simplify the graph ({exc}); export with simplify=false"
        ) from None


def embedded_manifest(path: Path) -> str | None:
    """The manifest JSON stored in an ONNX file's metadata (None when absent)."""
    onnx = import_onnx()
    model = onnx.load(str(path), load_external_data=False)
    props = {prop.key: prop.value for prop in model.metadata_props}
    return props.get(METADATA_KEY)
