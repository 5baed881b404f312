"""Run an OpenVINO IR (`.xml` + `.bin`), or an `.onnx` read by OpenVINO, on an OpenVINO device.

Precision: on CPUs with bf16 support (AVX-512 BF16, AMX) OpenVINO silently computes in bf16
unless `INFERENCE_PRECISION_HINT` is set, whatever the weights' precision. The backend always
makes the choice explicit: the `precision` option, else the manifest's `runtime_hints`, and
records what the device actually resolved in `info["precision"]`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dfseg.errors import missing_dependency
from dfseg.runtime.backends.base import Backend, BackendOptions, raw_outputs_from
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
    """An OpenVINO compiled model with a LATENCY hint and one reused infer request."""

    name = "openvino"

    def __init__(self, path: Path, manifest: ArtifactManifest, options: BackendOptions) -> None:
        super().__init__(path, manifest, options)
        ov = import_openvino()
        core = ov.Core()
        device = (options.device or "CPU").upper()
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        hint = precision_hint(options.precision, manifest)
        if hint is not None:
            config[PRECISION_HINT] = hint
        if options.threads and device == "CPU":
            config["INFERENCE_NUM_THREADS"] = int(options.threads)
        try:
            self.compiled = core.compile_model(str(path), device, config)
        except RuntimeError as exc:
            raise ArtifactError(f"{path}: OpenVINO cannot compile it on {device} ({exc})") from None
        self.request = self.compiled.create_infer_request()
        self.output_names = [output.get_any_name() for output in self.compiled.outputs]
        resolved = (
            _type_name(self.compiled.get_property(PRECISION_HINT)) if device == "CPU" else hint
        )
        self.info = {"device": device, "precision": _precision_name(resolved)}
        if options.threads:
            self.info["threads"] = str(options.threads)

    def run(self, images: np.ndarray) -> RawOutputs:
        self.request.infer({0: images}, share_inputs=True)
        named = {
            name: self.request.get_output_tensor(index).data.copy()
            for index, name in enumerate(self.output_names)
        }
        return raw_outputs_from(named)


def _type_name(value: Any) -> str:
    """An OpenVINO element type (or string) -> its short name ("f32", "bf16")."""
    to_string = getattr(value, "to_string", None)
    return str(to_string() if callable(to_string) else value)


def _precision_name(hint: str | None) -> str:
    """OpenVINO element type -> our precision name ("f32" -> "fp32", "bf16" -> "bf16")."""
    if hint is None:
        return "default"
    return {"f32": "fp32", "f16": "fp16", "bf16": "bf16"}.get(hint.lower(), hint.lower())
