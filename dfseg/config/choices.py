"""Names the project file and the command line both offer as choices, as plain `Literal` types
(no pydantic: the CLI's --help shows them without importing the config models)."""

from __future__ import annotations

from typing import Literal

Backend = Literal["auto", "torch", "onnxruntime", "openvino", "tensorrt"]
ExportFormat = Literal["onnx", "openvino", "trt"]
