"""Run an OpenVINO IR (`.xml` + `.bin`), or an `.onnx` read by OpenVINO, on an OpenVINO device.

Precision: on CPUs with bf16 support (AVX-512 BF16, AMX) OpenVINO silently computes in bf16
unless `INFERENCE_PRECISION_HINT` is set, whatever the weights' precision. The backend always
makes the choice explicit: the `precision` option, else the manifest's `runtime_hints`, and
records what the device actually resolved in `info["precision"]`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from dfseg.errors import missing_dependency
from dfseg.runtime.backends.base import (
    Backend,
    BackendOptions,
    LayerTime,
    pad_batch,
    raw_outputs_from,
)
from dfseg.runtime.errors import ArtifactError, BackendError
from dfseg.runtime.outputs import RawOutputs
from dfseg.structures.manifest import ArtifactManifest

PRECISION_HINT = "INFERENCE_PRECISION_HINT"
# User-facing precision name -> OpenVINO hint value (None: leave the device's default).
PRECISION_HINTS: dict[str, str | None] = {
    "fp32": "f32",
    "f32": "f32",
    "bf16": "bf16",
    "fp16": "f16",
    "f16": "f16",
    "default": None,
}


def import_openvino() -> Any:
    try:
        import openvino
    except ImportError:
        raise missing_dependency("openvino", "export", "The openvino backend") from None
    return openvino


@functools.cache
def openvino_core() -> Any:
    """The process's one `ov.Core`. Every Core loads its own CPU plugin, and plugins whose
    lifetimes overlap without nesting leave a dangling signal stack behind (see
    `dfseg.runtime.signal_stack`); one Core that lives as long as the process never does."""
    return import_openvino().Core()


def precision_hint(requested: str | None, manifest: ArtifactManifest) -> str | None:
    """The INFERENCE_PRECISION_HINT to compile with (None: the device default).

    Args:
        requested: the user's choice ("fp32", "bf16", "fp16", "default"), or None to use the
            manifest's `runtime_hints`; f32 when the manifest has none (an ONNX file), so that
            nothing runs in reduced precision unless asked to.
        manifest: the artifact's manifest.
    """
    name = requested or manifest.runtime_hints.get(PRECISION_HINT) or "f32"
    if name.lower() not in PRECISION_HINTS:
        raise BackendError(
            f"unknown OpenVINO precision {name!r}; use one of {sorted(PRECISION_HINTS)}"
        )
    return PRECISION_HINTS[name.lower()]


class OpenVinoBackend(Backend):
    """An OpenVINO compiled model with a LATENCY hint and one reused infer request; with
    `options.streams` > 1, a THROUGHPUT compilation with that many streams whose asynchronous
    infer requests run the images of a batch in parallel (`AsyncInferQueue`): a batch is cut
    into the artifact's batch size (the last piece padded) and the pieces are spread over the
    requests, so a batch-1 artifact takes batches of any size.

    `run_uint8` uses a second compilation of the model whose input is the resized uint8 BGR
    image (NHWC): OpenVINO's pre-processing does the float conversion, BGR->RGB, scaling and
    layout change inside the graph, ~4% faster end to end than converting in numpy (N, bf16),
    with outputs equal to the float path's to ~1e-6 (trained N-seg model). Dynamic-size
    artifacts keep the float path: with symbolic input shapes OpenVINO compiles the converted
    input differently and scores moved by up to 4e-3 in our tests.
    """

    name = "openvino"
    supports_uint8 = True

    def __init__(
        self,
        path: Path,
        manifest: ArtifactManifest,
        options: BackendOptions,
        compiled: Any = None,
    ) -> None:
        """Compile `path`, or wrap `compiled`: a model OpenVINO has compiled already (NNCF's
        accuracy control hands one to its validation function), run on float tensors only."""
        super().__init__(path, manifest, options)
        self.in_memory = compiled is not None
        self.core = openvino_core()
        self.device = (options.device or "CPU").upper()
        self.streams = max(1, options.streams or 1)
        self.config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if self.streams > 1:
            self.config = {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": self.streams}
        hint = precision_hint(options.precision, manifest)
        if hint is not None:
            self.config[PRECISION_HINT] = hint
        if options.threads and self.device == "CPU":
            self.config["INFERENCE_NUM_THREADS"] = int(options.threads)
        if options.profile:
            self.config["PERF_COUNT"] = "YES"
        self._layers: dict[str, LayerTime] = {}
        self.compiled = compiled if compiled is not None else self._compile(str(path))
        self.request = self.compiled.create_infer_request()
        self.output_names = [output.get_any_name() for output in self.compiled.outputs]
        self._uint8_request: Any = None
        self._uint8_compiled: Any = None
        self._queues: dict[str, Any] = {}
        cpu = self.device == "CPU" and not self.in_memory
        resolved = self.compiled.get_property(PRECISION_HINT) if cpu else hint
        self.info = {"device": self.device, "precision": _precision_name(_type_name(resolved))}
        if options.threads:
            self.info["threads"] = str(options.threads)
        if self.streams > 1:
            self.info["streams"] = str(self.streams)

    @property
    def accepts_uint8(self) -> bool:
        # an in-memory model has no file to build the uint8-input model from
        return not self.manifest.dynamic_size and not self.in_memory

    def _compile(self, model: Any) -> Any:
        try:
            return self.core.compile_model(model, self.device, self.config)
        except RuntimeError as exc:
            raise ArtifactError(
                f"{self.path}: OpenVINO cannot compile it on {self.device} ({exc})"
            ) from None

    @property
    def fixed_batch(self) -> int | None:
        # with streams, `run` cuts any batch into the artifact's own batch size itself
        return None if self.streams > 1 else super().fixed_batch

    def run(self, images: np.ndarray) -> RawOutputs:
        if self.streams > 1:
            return self._infer_parallel("float", self.compiled, images)
        return self._infer(self.request, images)

    def run_uint8(self, images_bgr: np.ndarray) -> RawOutputs:
        if self._uint8_request is None:
            self._uint8_compiled = self._compile(self._uint8_model())
            self._uint8_request = self._uint8_compiled.create_infer_request()
        if self.streams > 1:
            return self._infer_parallel("uint8", self._uint8_compiled, images_bgr)
        return self._infer(self._uint8_request, images_bgr)

    def _infer_parallel(self, key: str, compiled: Any, images: np.ndarray) -> RawOutputs:
        """The batch cut into pieces of the artifact's batch size, run on the streams' infer
        requests at once; outputs in input order, padding dropped."""
        queue = self._queues.get(key)
        if queue is None:
            queue = import_openvino().AsyncInferQueue(compiled, self.streams)
            self._queues[key] = queue
        fixed = super().fixed_batch
        piece = fixed or max(1, -(-len(images) // self.streams))
        results: dict[int, dict[str, np.ndarray]] = {}

        def collect(request: Any, start: int) -> None:
            results[start] = self._outputs(request)

        queue.set_callback(collect)
        for start in range(0, len(images), piece):
            chunk = images[start : start + piece]
            if fixed is not None:
                chunk = pad_batch(chunk, fixed)
            queue.start_async({0: np.ascontiguousarray(chunk)}, start)
        queue.wait_all()
        order = sorted(results)
        merged = {
            name: np.concatenate([results[start][name] for start in order])[: len(images)]
            for name in self.output_names
        }
        return raw_outputs_from(merged)

    def _uint8_model(self) -> Any:
        """The model with uint8 NHWC BGR input, converted as `preprocess_batch` does."""
        ov = import_openvino()
        import openvino.opset13 as ops
        from openvino.preprocess import ColorFormat, PrePostProcessor

        processor = PrePostProcessor(self.core.read_model(str(self.path)))
        tensor = processor.input().tensor()
        tensor.set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
        tensor.set_color_format(ColorFormat.BGR)
        processor.input().model().set_layout(ov.Layout("NCHW"))
        steps = processor.input().preprocess().convert_element_type(ov.Type.f32)
        factor = ops.constant(np.float32(self.manifest.preprocessing.scale))
        # Multiply by float32(scale) like the numpy path (a `scale(255)` division differs by an
        # ulp, which random-weight test models amplify).
        steps.convert_color(ColorFormat.RGB)
        steps.custom(lambda node: ops.multiply(node, factor).output(0))
        return processor.build()

    def _infer(self, request: Any, images: np.ndarray) -> RawOutputs:
        request.infer({0: images}, share_inputs=True)
        if self.options.profile:
            self._record_layers(request)
        return raw_outputs_from(self._outputs(request))

    def _outputs(self, request: Any) -> dict[str, np.ndarray]:
        """A finished request's outputs by name (copied: the request is reused)."""
        return {
            name: request.get_output_tensor(index).data.copy()
            for index, name in enumerate(self.output_names)
        }

    def _record_layers(self, request: Any) -> None:
        """Add the last inference's per-node times (OpenVINO keeps only the last one's)."""
        for info in request.get_profiling_info():
            if str(info.status).rsplit(".", 1)[-1] != "EXECUTED":
                continue
            layer = self._layers.get(info.node_name)
            if layer is None:
                layer = LayerTime(info.node_name, info.node_type, info.exec_type)
                self._layers[info.node_name] = layer
            layer.add(info.real_time.total_seconds() * 1000.0)

    def layer_times(self) -> list[LayerTime]:
        """Per-node times (OpenVINO performance counters) over the runs so far."""
        if not self.options.profile:
            raise BackendError("open the openvino backend with profile=True to profile it")
        return list(self._layers.values())


def _type_name(value: Any) -> str:
    """An OpenVINO element type (or string) -> its short name ("f32", "bf16")."""
    to_string = getattr(value, "to_string", None)
    return str(to_string() if callable(to_string) else value)


def _precision_name(hint: str | None) -> str:
    """OpenVINO element type -> our precision name ("f32" -> "fp32", "bf16" -> "bf16")."""
    if hint is None:
        return "default"
    return {"f32": "fp32", "f16": "fp16", "bf16": "bf16"}.get(hint.lower(), hint.lower())
