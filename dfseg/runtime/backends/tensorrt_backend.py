"""Run a serialized TensorRT engine (`.engine`) on a CUDA GPU, with torch CUDA tensors as I/O
buffers and `execute_async_v3` on the current torch stream (TensorRT >= 10 API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dfseg.errors import missing_dependency
from dfseg.runtime.backends.base import INPUT_NAME, Backend, BackendOptions, raw_outputs_from
from dfseg.runtime.errors import ArtifactError, BackendError
from dfseg.runtime.outputs import RawOutputs
from dfseg.structures.manifest import ArtifactManifest


def import_tensorrt() -> Any:
    try:
        import tensorrt
    except ImportError:
        raise missing_dependency("tensorrt", "trt", "The tensorrt backend") from None
    return tensorrt


def _torch_dtype(trt: Any, dtype: Any) -> Any:
    import torch

    table = {
        trt.float32: torch.float32,
        trt.float16: torch.float16,
        trt.int32: torch.int32,
        trt.int64: torch.int64,
        trt.bool: torch.bool,
    }
    if dtype not in table:
        raise BackendError(f"unsupported TensorRT tensor type {dtype}")
    return table[dtype]


class TensorRtBackend(Backend):
    """A deserialized engine and one execution context; the engine's precision is fixed at
    build time (recorded in the manifest)."""

    name = "tensorrt"

    def __init__(self, path: Path, manifest: ArtifactManifest, options: BackendOptions) -> None:
        super().__init__(path, manifest, options)
        import torch

        trt = import_tensorrt()
        if not torch.cuda.is_available():
            raise BackendError("the tensorrt backend needs a CUDA GPU; none is visible to torch")
        self.device = torch.device(options.device or "cuda")
        if self.device.type != "cuda":
            raise BackendError(f"the tensorrt backend runs on CUDA devices, not {self.device}")
        self.trt = trt
        logger = trt.Logger(trt.Logger.WARNING)
        with torch.cuda.device(self.device):
            engine = trt.Runtime(logger).deserialize_cuda_engine(path.read_bytes())
            if engine is None:
                raise ArtifactError(
                    f"{path}: TensorRT cannot deserialize it (built with another TensorRT "
                    "version or GPU?); export it again on this machine"
                )
            self.engine = engine
            self.context = engine.create_execution_context()
        self.output_names = [
            name
            for name in (engine.get_tensor_name(i) for i in range(engine.num_io_tensors))
            if engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT
        ]
        self.info = {"device": str(self.device), "precision": manifest.precision}

    @property
    def max_batch(self) -> int | None:
        return self.manifest.batch

    def run(self, images: np.ndarray) -> RawOutputs:
        import torch

        input_dtype = _torch_dtype(self.trt, self.engine.get_tensor_dtype(INPUT_NAME))
        batch = torch.from_numpy(images).to(self.device, dtype=input_dtype).contiguous()
        self.context.set_input_shape(INPUT_NAME, tuple(batch.shape))
        self.context.set_tensor_address(INPUT_NAME, batch.data_ptr())
        outputs: dict[str, torch.Tensor] = {}
        for name in self.output_names:
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = _torch_dtype(self.trt, self.engine.get_tensor_dtype(name))
            outputs[name] = torch.empty(shape, dtype=dtype, device=self.device)
            self.context.set_tensor_address(name, outputs[name].data_ptr())
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise BackendError(f"{self.path}: TensorRT execution failed")
        stream.synchronize()
        return raw_outputs_from({name: _to_numpy(tensor) for name, tensor in outputs.items()})


def _to_numpy(tensor: Any) -> np.ndarray:
    import torch

    if tensor.dtype == torch.float16:
        tensor = tensor.float()
    elif tensor.dtype == torch.int32:
        tensor = tensor.long()
    return tensor.cpu().numpy()
