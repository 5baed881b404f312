"""Run a dfseg checkpoint (`best.pt` / `last.pt`) with PyTorch.

The only runtime module that touches `dfseg.nn`, imported inside functions so that the runtime
(and `dfseg --help`) stays light when another backend is used.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dfseg.runtime.backends.base import Backend, BackendOptions, LayerTime, raw_outputs_from
from dfseg.runtime.errors import BackendError
from dfseg.runtime.outputs import RawOutputs
from dfseg.structures.manifest import ArtifactManifest

if TYPE_CHECKING:
    import torch


class TorchBackend(Backend):
    """Eager PyTorch on CPU or CUDA, FP32.

    The model is deployed (conv+BN and RepVGG branches folded, backbone norms folded) and stored
    channels-last, which is 20-35% faster on CPU; results equal the training-time forward up to
    float rounding. Any batch size and, as the model builds anchors for the shapes it sees, any
    input size (multiples of 32) are accepted.
    """

    name = "torch"

    def __init__(
        self, path: Path, manifest: ArtifactManifest, options: BackendOptions, graph: Any
    ) -> None:
        super().__init__(path, manifest, options)
        import torch

        self.graph = graph
        self.device = torch.device(options.device or "cpu")
        self.info = {"device": str(self.device), "precision": "fp32"}
        if options.threads:
            torch.set_num_threads(options.threads)
            self.info["threads"] = str(options.threads)
        self._layers: dict[str, LayerTime] = {}
        if options.profile:
            self._time_modules()

    def _time_modules(self) -> None:
        """Time every module's forward with hooks; `layer_times` then reports the modules two
        calls below the model (backbone.stem, backbone.stages.0, decoder.decoder.layers.0, ...),
        going deeper where a module is only a holder whose parts are called directly."""
        import torch

        synchronize = torch.cuda.synchronize if self.device.type == "cuda" else lambda: None
        for name, module in self.graph.model.named_modules():
            if not name:
                continue
            layer = LayerTime(name, type(module).__name__)
            self._layers[name] = layer
            starts: list[float] = []

            def before(_: Any, __: Any, starts: list[float] = starts) -> None:
                synchronize()
                starts.append(time.perf_counter())

            def after(_: Any, __: Any, ___: Any, starts: list[float] = starts,
                      layer: LayerTime = layer) -> None:  # fmt: skip
                synchronize()
                layer.add(1000.0 * (time.perf_counter() - starts.pop()))

            module.register_forward_pre_hook(before)
            module.register_forward_hook(after)

    def layer_times(self) -> list[LayerTime]:
        """Per-module forward times (hooks) over the runs so far."""
        if not self.options.profile:
            raise BackendError("open the torch backend with profile=True to profile it")
        names = _call_frontier(self.graph.model, "", 2, self._layers)
        return [self._layers[name] for name in names]

    @classmethod
    def open(cls, path: Path, options: BackendOptions) -> Backend:
        import torch

        from dfseg.nn.trained import inference_graph, load_trained_model

        if options.precision not in (None, "fp32", "default"):
            raise BackendError(
                f"the torch backend runs FP32 only (got precision={options.precision!r}); "
                "export to OpenVINO or TensorRT for reduced precision"
            )
        model, manifest = load_trained_model(path)
        device = torch.device(options.device or "cpu")
        model.deploy(fuse_backbone=True, channels_last=device.type == "cpu")
        graph = inference_graph(model, manifest).to(device).eval()
        return cls(path, manifest, options, graph)

    @property
    def fixed_batch(self) -> int | None:
        return None

    @property
    def dynamic_size(self) -> bool:
        return True

    def run(self, images: np.ndarray) -> RawOutputs:
        import torch

        with torch.inference_mode():
            tensor = _to_device(torch.from_numpy(images), self.device)
            try:
                outputs = self.graph(tensor)
            except ValueError as exc:  # the decoder refuses inputs with too few anchors
                raise BackendError(
                    f"input {images.shape[3]}x{images.shape[2]} is too small for this model "
                    f"({exc}); with --rect, wide or tall images can get too short"
                ) from None
        names = self.graph.output_names
        return raw_outputs_from(
            {name: value.cpu().numpy() for name, value in zip(names, outputs, strict=True)}
        )


def _call_frontier(
    module: Any, prefix: str, levels: int, layers: dict[str, LayerTime]
) -> list[str]:
    """Names of the called modules `levels` calls below `module` (module lists and modules
    that never ran are holders, not calls: their parts stand in for them)."""
    import torch

    found: list[str] = []
    for name, child in module.named_children():
        full = f"{prefix}{name}"
        holder = isinstance(child, (torch.nn.ModuleList, torch.nn.ModuleDict))
        called = not holder and full in layers and layers[full].calls > 0
        if called and (levels == 1 or not any(True for _ in child.children())):
            found.append(full)
        elif holder or not called:
            found += _call_frontier(child, f"{full}.", levels, layers)
        else:
            found += _call_frontier(child, f"{full}.", levels - 1, layers)
    return found


def _to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    import torch

    if device.type == "cpu":
        return tensor.contiguous(memory_format=torch.channels_last)
    return tensor.to(device, non_blocking=True)
