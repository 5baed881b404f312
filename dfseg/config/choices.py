"""Names the project file and the command line both offer as choices, as plain `Literal` types
(no pydantic: the CLI's --help shows them without importing the config models)."""

from __future__ import annotations

from typing import Literal

Backend = Literal["auto", "torch", "onnxruntime", "openvino", "tensorrt"]
ExportFormat = Literal["onnx", "openvino", "trt"]
Decode = Literal["topk", "one_per_query", "nms"]
"""How the K detections are chosen from the queries: the best (query, class) pairs (D-FINE's
default), the best class of each query, or the pairs with a class-aware NMS on top."""
TileMerge = Literal["fuse", "nms"]
QuantizeScope = Literal["all", "backbone", "no_attention"]
"""What `dfseg quantize` may turn into INT8 (`dfseg.export.quantize.SCOPE_PATTERNS`)."""
AttentionSum = Literal["levels", "concat"]
"""How deformable attention sums its samples: per feature level, or over every level's samples
concatenated (D-FINE's layout, as trained); the same values (`DFine.set_attention_sum`)."""
