"""Trained models for inference: rebuild a `DFine` from a dfseg run checkpoint (`best.pt` or
`last.pt`), and `InferenceGraph`, the model plus its top-K postprocess with flat outputs (what the
torch backend runs and what `dfseg export` traces).

A dfseg checkpoint carries its `ArtifactManifest` (size, classes, task, input size), so the model
is rebuilt from the file alone: nothing else about the run is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
import torch.nn as nn
from torch import Tensor

from dfseg.config.choices import Decode
from dfseg.config.tasks import task_spec
from dfseg.errors import DfsegError
from dfseg.nn.build import build_described_model
from dfseg.nn.checkpoint import CheckpointError, load_checkpoint, read_checkpoint
from dfseg.nn.model import DFine
from dfseg.nn.postprocess import DetectionPostprocess, max_detections
from dfseg.nn.semantic_model import DFineSemantic
from dfseg.structures.manifest import ArtifactManifest, ManifestError
from dfseg.structures.run_layout import CHECKPOINT_FORMAT


def read_trained_manifest(payload: object, source: Path) -> ArtifactManifest:
    """The manifest stored in a loaded dfseg checkpoint.

    Raises:
        CheckpointError: not a dfseg checkpoint, or one without a valid manifest.
    """
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{source}: not a dfseg run checkpoint (no format '{CHECKPOINT_FORMAT}'); "
            "give the best.pt or last.pt of a `dfseg train` run. Official D-FINE weights are "
            "starting points for training (model.pretrained), not inference artifacts."
        )
    if not isinstance(payload.get("manifest"), dict):
        raise CheckpointError(f"{source}: the checkpoint has no manifest; re-save it with dfseg")
    try:
        return ArtifactManifest.model_validate(payload["manifest"])
    except ValueError as exc:
        raise ManifestError(f"{source}: invalid manifest inside the checkpoint ({exc})") from None


def read_checkpoint_manifest(path: Path) -> ArtifactManifest:
    """The manifest of a dfseg checkpoint file (classes, task, tuned threshold), without
    building the model."""
    return read_trained_manifest(read_checkpoint(path), path)


def load_trained_model(path: Path | str) -> tuple[DFine | DFineSemantic, ArtifactManifest]:
    """Load a dfseg `best.pt` / `last.pt` (its EMA weights when present) into a fresh model.

    Args:
        path: the checkpoint file. Read with `torch.load(weights_only=True)`.

    Returns:
        (model in eval mode, not deployed; the checkpoint's manifest). The model is built for
        the manifest's input size.

    Raises:
        CheckpointError: unreadable file, not a dfseg checkpoint, or weights that do not fit the
            model its manifest describes.
    """
    path = Path(path)
    payload = read_checkpoint(path)
    manifest = read_trained_manifest(payload, path)
    description = manifest.model
    model = build_described_model(description)
    report = load_checkpoint(model, payload)
    if report.reinitialized:
        raise CheckpointError(
            f"{path}: weights for {report.reinitialized[:4]} are missing or do not fit the "
            f"{description.size!r} {description.task} model with {description.num_classes} "
            "classes the manifest describes; the checkpoint is damaged or was edited"
        )
    return model.eval(), manifest


class UnsupportedTaskError(DfsegError):
    """A command that does not handle the model's task yet."""


class InferenceGraph(nn.Module):
    """A model and its top-K postprocess with flat outputs, boxes in input pixels.

    Outputs (in this order): `labels` [B, K] int64, `boxes` [B, K, 4] absolute xyxy in pixels
    of the input tensor, `scores` [B, K] sigmoid scores descending, and for segmentation
    `mask_logits` [B, K, H/4, W/4] pre-sigmoid. The input size is read from the tensor's shape
    at run time, so a traced graph keeps working for other batch sizes (and input sizes when the
    model allows).

    Args:
        model: a `DFine` (deployed or not), eval mode.
        top_k: K, detections kept per image (at most what the queries and classes give).
        decode, nms_iou: how the K are chosen (`DetectionPostprocess`).
    """

    def __init__(
        self,
        model: DFine,
        top_k: int = 300,
        decode: Decode = "topk",
        nms_iou: float = 0.7,
    ) -> None:
        super().__init__()
        self.model = model
        description = model.description
        available = max_detections(model.decoder.num_queries, description.num_classes, decode)
        self.postprocess = DetectionPostprocess(min(top_k, available), decode, nms_iou)
        self.output_names = list(task_spec(model.description.task).outputs)

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        """images [B, 3, H, W] float32 RGB in [0, 1] -> the outputs named in `output_names`."""
        outputs = self.model(images)
        size_hw = torch._shape_as_tensor(images)[2:].to(images.dtype)  # [2] (H, W), traceable
        size_wh = size_hw.flip(0).unsqueeze(0).expand(images.shape[0], 2)  # [B, 2]
        result = self.postprocess(outputs, size_wh)
        return tuple(result[name] for name in self.output_names)


SemanticOutput = Literal["logits", "argmax"]
SEMANTIC_OUTPUTS: dict[str, str] = {"logits": "semantic_logits", "argmax": "semantic_labels"}


class SemanticGraph(nn.Module):
    """A semantic model with one flat output at the input size:

    - `semantic_logits` [B, C, H, W] float32 class logits ("logits"): the runtime resizes them
      to each original image before the argmax, exactly as validation does;
    - `semantic_labels` [B, H, W] uint8 class ids ("argmax"): C times less output to copy, the
      class map resized with nearest neighbours (blockier edges when the original is larger).

    Args:
        model: a `DFineSemantic` (deployed or not), eval mode.
        output: "logits" or "argmax".
    """

    def __init__(self, model: DFineSemantic, output: SemanticOutput = "logits") -> None:
        super().__init__()
        if output not in SEMANTIC_OUTPUTS:
            raise ValueError(f"semantic output must be one of {sorted(SEMANTIC_OUTPUTS)}")
        self.model = model
        self.argmax = output == "argmax"
        self.output_names = [SEMANTIC_OUTPUTS[output]]

    def forward(self, images: Tensor) -> tuple[Tensor]:
        """images [B, 3, H, W] float32 RGB in [0, 1] -> (logits or class ids,)."""
        logits = self.model(images)["semantic_logits"]
        if self.argmax:
            return (logits.argmax(dim=1).to(torch.uint8),)
        return (logits,)


def semantic_output_of(outputs: list[str]) -> SemanticOutput:
    """Which semantic output a manifest's output names hold ("logits" unless argmax)."""
    return "argmax" if SEMANTIC_OUTPUTS["argmax"] in outputs else "logits"


def inference_graph(
    model: DFine | DFineSemantic, manifest: ArtifactManifest, top_k: int | None = None
) -> InferenceGraph | SemanticGraph:
    """The graph that runs `model` as its manifest describes (decoding, top-K; for semantic
    models the output named in `manifest.outputs`)."""
    if isinstance(model, DFineSemantic):
        return SemanticGraph(model, semantic_output_of(manifest.outputs))
    return InferenceGraph(
        model, manifest.top_k if top_k is None else top_k, manifest.decode, manifest.nms_iou
    )
