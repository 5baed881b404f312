"""Run an exported `.onnx` with ONNX Runtime (CPU, or CUDA when its provider is installed)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from dfseg.errors import missing_dependency
from dfseg.runtime.backends.base import (
    INPUT_NAME,
    Backend,
    BackendOptions,
    LayerTime,
    raw_outputs_from,
)
from dfseg.runtime.errors import ArtifactError, BackendError
from dfseg.runtime.outputs import RawOutputs
from dfseg.structures.manifest import MANIFEST_FILE, ArtifactManifest

METADATA_KEY = "dfseg_manifest"


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise missing_dependency("onnxruntime", "export", "The onnxruntime backend") from None
    return onnxruntime


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime session with all graph optimisations, FP32."""

    name = "onnxruntime"

    def __init__(self, path: Path, manifest: ArtifactManifest, options: BackendOptions) -> None:
        super().__init__(path, manifest, options)
        if options.precision not in (None, "fp32", "default"):
            raise BackendError(
                f"onnxruntime runs the ONNX file as exported (FP32); precision="
                f"{options.precision!r} is for the openvino backend"
            )
        self.session = create_session(path, options)
        self.output_names = [output.name for output in self.session.get_outputs()]
        self._profiled: list[LayerTime] | None = None
        self.info = {
            "device": "cuda" if _wants_cuda(options.device) else "cpu",
            "precision": "fp32",
            "providers": ",".join(self.session.get_providers()),
        }

    @classmethod
    def read_manifest(cls, path: Path) -> ArtifactManifest:
        """manifest.json beside the file, else the copy embedded in the ONNX metadata."""
        if (path.parent / MANIFEST_FILE).is_file():
            return super().read_manifest(path)
        session = create_session(path, BackendOptions(threads=1))
        text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if text is None:
            raise ArtifactError(
                f"{path}: no {MANIFEST_FILE} beside it and no dfseg manifest in its metadata; "
                "export the model with `dfseg export`"
            )
        return ArtifactManifest.model_validate(json.loads(text))

    def run(self, images: np.ndarray) -> RawOutputs:
        outputs = self.session.run(self.output_names, {INPUT_NAME: images})
        return raw_outputs_from(dict(zip(self.output_names, outputs, strict=True)))

    def layer_times(self) -> list[LayerTime]:
        """Kernel times per graph node from onnxruntime's profiler. Reading them ends
        profiling: later runs are not profiled, and later calls return the same times."""
        if not self.options.profile:
            raise BackendError("open the onnxruntime backend with profile=True to profile it")
        if self._profiled is None:
            self._profiled = self._read_profile(Path(self.session.end_profiling()))
        return self._profiled

    def _read_profile(self, trace: Path) -> list[LayerTime]:
        events = json.loads(trace.read_text(encoding="utf-8"))
        shutil.rmtree(trace.parent, ignore_errors=True)
        layers: dict[str, LayerTime] = {}
        for event in events:
            name = str(event.get("name", ""))
            if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
                continue
            node = name.removesuffix("_kernel_time")
            args = event.get("args", {})
            layer = layers.setdefault(node, LayerTime(node, str(args.get("op_name", "?"))))
            layer.add(float(event.get("dur", 0)) / 1000.0)  # microseconds
        return list(layers.values())


def _wants_cuda(device: str | None) -> bool:
    return device is not None and device.lower().startswith("cuda")


def create_session(path: Path, options: BackendOptions) -> Any:
    """An `InferenceSession` for `path` with the threads and device of `options`."""
    ort = import_onnxruntime()
    session_options = ort.SessionOptions()
    session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if options.threads:
        session_options.intra_op_num_threads = options.threads
        session_options.inter_op_num_threads = 1
    if options.profile:
        session_options.enable_profiling = True
        session_options.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "ort-profile")
    providers: list[Any] = ["CPUExecutionProvider"]
    if _wants_cuda(options.device):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise BackendError(
                "device cuda asked for, but this onnxruntime has no CUDAExecutionProvider; "
                "install onnxruntime-gpu"
            )
        device = options.device or "cuda"
        index = device.split(":")[1] if ":" in device else "0"
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(index)}))
    try:
        return ort.InferenceSession(str(path), session_options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise ArtifactError(f"{path}: onnxruntime cannot load it ({exc})") from None
