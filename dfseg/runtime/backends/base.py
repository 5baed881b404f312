"""What every inference backend provides: open an artifact, run a preprocessed batch, return
`RawOutputs`. Backends differ only in how they run the graph; pre- and post-processing are shared
(`dfseg.runtime.preprocess`, `dfseg.runtime.postprocess`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from dfseg.runtime.errors import ArtifactError, BackendError
from dfseg.runtime.outputs import RawOutputs
from dfseg.structures.manifest import MANIFEST_FILE, ArtifactManifest

# Names of the exported graph's input and outputs, in output order (mask_logits: segment only).
INPUT_NAME = "images"
OUTPUT_NAMES = ("labels", "boxes", "scores", "mask_logits")
# A semantic model's one output: class logits, or the class ids when exported with argmax.
SEMANTIC_OUTPUT_NAMES = ("semantic_logits", "semantic_labels")


@dataclass(frozen=True)
class BackendOptions:
    """How to run an artifact.

    Attributes:
        device: "cpu", "cuda", "cuda:1" (torch, onnxruntime, tensorrt) or an OpenVINO device
            name ("CPU", "GPU", "AUTO"); None: the backend's default (CPU; CUDA for TensorRT).
        threads: CPU threads for inference; None: the backend's default (all cores).
        precision: inference precision where the backend chooses it at load time (OpenVINO:
            "fp32", "bf16", "fp16" or "default" for the device's own choice); None: what the
            artifact's manifest records.
        profile: record per-layer times (`Backend.layer_times`; slows inference a little).
        streams: OpenVINO throughput mode: this many inference streams, each with its own
            infer request, run the images of a batch in parallel (images/s over latency);
            None or 1: one request with the latency hint.
    """

    device: str | None = None
    threads: int | None = None
    precision: str | None = None
    profile: bool = False
    streams: int | None = None


@dataclass
class LayerTime:
    """Time spent in one layer of the model over the profiled runs.

    Attributes:
        name: the layer (graph node or module path).
        kind: its operation (OpenVINO node type, ONNX op type, torch module class).
        precision: what it ran in, where the backend says (OpenVINO's exec type, e.g.
            "jit_avx512_amx_bf16_I8"); "" otherwise.
        total_ms: summed over the runs; calls: how many times it ran; first_ms: its first call
            alone (a warm-up, which profiles leave out).
    """

    name: str
    kind: str
    precision: str = ""
    total_ms: float = 0.0
    calls: int = 0
    first_ms: float = 0.0

    def add(self, ms: float) -> None:
        """Record one call."""
        if self.calls == 0:
            self.first_ms = ms
        self.total_ms += ms
        self.calls += 1


class Backend(ABC):
    """One way of running an artifact on a `[B, 3, H, W]` float32 RGB 0..1 batch.

    Attributes:
        name: the key of the backend in `dfseg.runtime.backends.BACKENDS`.
        manifest: the artifact's self-description.
        info: facts for reports (resolved precision, device, threads).
    """

    name: ClassVar[str]
    # True when `run_uint8` can take resized uint8 BGR images and convert them inside the graph
    # (cheaper than converting to a float tensor in numpy first); see `accepts_uint8`.
    supports_uint8: ClassVar[bool] = False

    def __init__(self, path: Path, manifest: ArtifactManifest, options: BackendOptions) -> None:
        self.path = path
        self.manifest = manifest
        self.options = options
        self.info: dict[str, str] = {}

    @classmethod
    def open(cls, path: Path, options: BackendOptions) -> Backend:
        """Load the artifact at `path` (its manifest is `manifest.json` beside it)."""
        return cls(path, cls.read_manifest(path), options)

    @classmethod
    def read_manifest(cls, path: Path) -> ArtifactManifest:
        """The manifest beside a model file."""
        manifest_path = path.parent / MANIFEST_FILE
        if not manifest_path.is_file():
            raise ArtifactError(
                f"{path}: no {MANIFEST_FILE} beside it; keep the export folder of `dfseg export` "
                "together (the manifest holds classes, input size and threshold)"
            )
        return ArtifactManifest.read(manifest_path)

    def layer_times(self) -> list[LayerTime]:
        """Per-layer times accumulated since the backend was opened with `profile=True`.

        Raises:
            BackendError: the backend was not opened for profiling, or cannot profile.
        """
        raise BackendError(f"the {self.name} backend cannot report per-layer times")

    @property
    def fixed_batch(self) -> int | None:
        """The only batch size the artifact accepts, or None when any size works."""
        return None if self.manifest.dynamic_batch else self.manifest.batch

    @property
    def max_batch(self) -> int | None:
        """The largest batch one call may take (None: no limit)."""
        return self.fixed_batch

    @property
    def accepts_uint8(self) -> bool:
        """Whether `Predictor` should feed `run_uint8` rather than `run`."""
        return self.supports_uint8

    @property
    def dynamic_size(self) -> bool:
        """Whether inputs of other sizes than the manifest's input size are accepted."""
        return self.manifest.dynamic_size

    @abstractmethod
    def run(self, images: np.ndarray) -> RawOutputs:
        """Run a batch.

        Args:
            images: [B, 3, H, W] float32 RGB in [0, 1], C-contiguous.

        Returns:
            `RawOutputs` with boxes in input pixels of this batch.
        """

    def run_uint8(self, images_bgr: np.ndarray) -> RawOutputs:
        """Run a batch of resized images: [B, H, W, 3] uint8 BGR (see `accepts_uint8`)."""
        raise NotImplementedError(f"the {self.name} backend takes float tensors only")


def pad_batch(batch: np.ndarray, size: int) -> np.ndarray:
    """`batch` with zero images appended up to `size` (a static-batch artifact's batch)."""
    if len(batch) >= size:
        return batch
    padding = np.zeros((size - len(batch), *batch.shape[1:]), dtype=batch.dtype)
    return np.concatenate([batch, padding])


def raw_outputs_from(named: Mapping[str, np.ndarray]) -> RawOutputs:
    """`RawOutputs` from arrays keyed by graph output name (mask_logits optional; a semantic
    model's `semantic_logits` or `semantic_labels`)."""
    if "semantic_logits" in named:
        return RawOutputs.from_semantic(
            np.asarray(named["semantic_logits"]).astype(np.float32, copy=False)
        )
    if "semantic_labels" in named:
        return RawOutputs.from_semantic(
            np.asarray(named["semantic_labels"]).astype(np.uint8, copy=False)
        )
    missing = [name for name in OUTPUT_NAMES[:3] if name not in named]
    if missing:
        raise ArtifactError(
            f"the model has no output(s) {missing} (found {sorted(named)}); "
            "it was not exported by `dfseg export`"
        )
    masks = named.get("mask_logits")
    return RawOutputs(
        labels=np.asarray(named["labels"]).astype(np.int64, copy=False),
        scores=np.asarray(named["scores"]).astype(np.float32, copy=False),
        boxes=np.asarray(named["boxes"]).astype(np.float32, copy=False),
        mask_logits=None if masks is None else np.asarray(masks).astype(np.float32, copy=False),
    )
