"""Inference backends behind one name -> class table. Each backend module imports its heavy
library (torch model code, onnxruntime, openvino, tensorrt) only when it is used."""

from __future__ import annotations

import importlib

from dfseg.runtime.backends.base import Backend, BackendOptions
from dfseg.runtime.errors import BackendError

# Backend name -> "module:Class"; modules are imported on first use.
BACKENDS: dict[str, str] = {
    "torch": "dfseg.runtime.backends.torch_backend:TorchBackend",
    "onnxruntime": "dfseg.runtime.backends.onnxruntime_backend:OnnxRuntimeBackend",
    "openvino": "dfseg.runtime.backends.openvino_backend:OpenVinoBackend",
    "tensorrt": "dfseg.runtime.backends.tensorrt_backend:TensorRtBackend",
}


def backend_class(name: str) -> type[Backend]:
    """The backend class registered under `name`."""
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; expected one of {sorted(BACKENDS)}")
    module_name, class_name = BACKENDS[name].split(":")
    backend: type[Backend] = getattr(importlib.import_module(module_name), class_name)
    return backend


__all__ = ["BACKENDS", "Backend", "BackendOptions", "backend_class"]
