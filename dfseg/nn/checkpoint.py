"""Load official D-FINE and dfseg checkpoints into a `DFine`, reporting what happened to every key.

Accepted containers: `{'model': state_dict}` (official public files, dfseg trainer),
`{'ema': {'module': state_dict}}` (official training checkpoints; preferred when present, as the
official loaders do) and a bare state dict. Files are read with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from dfseg.errors import DfsegError
from dfseg.nn.model import DFine
from dfseg.nn.semantic_model import DFineSemantic

# Buffers that depend on the model's input size: always rebuilt, never taken from a file.
SIZE_DEPENDENT_KEYS = ("decoder.anchors", "decoder.valid_mask")
# Tensors whose shape depends on the number of classes.
CLASS_DEPENDENT_PREFIXES = (
    "decoder.enc_score_head.",
    "decoder.dec_score_head.",
    "decoder.denoising_class_embed.",
)
MASK_HEAD_PREFIX = "mask_head."
# heads a checkpoint of another task lacks: they keep their fresh initialisation
FRESH_HEAD_PREFIXES = (MASK_HEAD_PREFIX, "semantic_head.")
SEMANTIC_CLASSIFIER_PREFIX = "semantic_head.classifier."


class CheckpointError(DfsegError):
    """A file or dict that cannot be loaded into the model (the message says why and how to fix)."""


@dataclass
class LoadReport:
    """What `load_checkpoint` did with every state-dict key.

    Attributes:
        source: file path or "<dict>".
        container: "ema" ({'ema': {'module': ...}}), "model" ({'model': ...}) or "state_dict".
        kept: model keys loaded from the checkpoint.
        reinitialized: model keys left freshly initialised (class-count mismatch, or a mask
            head missing from a detection checkpoint).
        rebuilt: size-dependent buffers computed for the model's own input size instead.
        ignored: checkpoint keys the model does not have.
        mapped_classes: with `class_names`, the project classes whose class-head rows were
            taken from the same-named class of the checkpoint (name -> row there).
    """

    source: str
    container: str
    kept: list[str] = field(default_factory=list)
    reinitialized: list[str] = field(default_factory=list)
    rebuilt: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    mapped_classes: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: counts per category."""
        return (
            f"{self.source} ({self.container}): {len(self.kept)} kept, "
            f"{len(self.reinitialized)} re-initialised, {len(self.rebuilt)} rebuilt, "
            f"{len(self.ignored)} ignored"
        )


def read_checkpoint(path: Path) -> Any:
    """`torch.load(path, weights_only=True)` on CPU; CheckpointError for anything unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling, zip and version errors all mean "not loadable"
        raise CheckpointError(
            f"{path} is not a loadable PyTorch checkpoint "
            f"({type(exc).__name__}: {str(exc).strip().splitlines()[0]}); "
            "expected a .pth file saved by D-FINE or dfseg"
        ) from exc


def extract_state_dict(checkpoint: Any, source: str = "<dict>") -> tuple[dict[str, Tensor], str]:
    """Find the state dict inside a checkpoint container.

    Returns:
        (state_dict, container) with container "ema", "model" or "state_dict".
    """
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{source}: expected a dict, got {type(checkpoint).__name__}")
    ema = checkpoint.get("ema")
    if isinstance(ema, dict) and isinstance(ema.get("module"), dict):
        state_dict, container = ema["module"], "ema"
    elif isinstance(checkpoint.get("model"), dict):
        state_dict, container = checkpoint["model"], "model"
    elif checkpoint and all(isinstance(v, Tensor) for v in checkpoint.values()):
        state_dict, container = checkpoint, "state_dict"
    else:
        raise CheckpointError(
            f"{source}: no weights found; expected {{'model': state_dict}}, "
            f"{{'ema': {{'module': state_dict}}}} or a state dict; "
            f"got keys {sorted(checkpoint)[:8]}"
        )
    if state_dict and all(k.startswith("module.") for k in state_dict):
        state_dict = {k[len("module.") :]: v for k, v in state_dict.items()}  # DDP-wrapped save
    return state_dict, container


def _mismatch(key: str, stored: Tensor, expected: Tensor) -> str:
    return f"{key}: checkpoint {tuple(stored.shape)} vs model {tuple(expected.shape)}"


def _shape_problems(model_state: dict[str, Tensor], state_dict: dict[str, Tensor]) -> list[str]:
    return [
        _mismatch(key, state_dict[key], value)
        for key, value in model_state.items()
        if key in state_dict and state_dict[key].shape != value.shape
    ]


def _strict_check(
    model_state: dict[str, Tensor], state_dict: dict[str, Tensor], source: str
) -> None:
    missing = sorted(set(model_state) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(model_state))
    mismatched = _shape_problems(model_state, state_dict)
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f"{source} does not match the model exactly (strict=True): "
            f"missing {missing[:10]} ({len(missing)}), unexpected {unexpected[:10]} "
            f"({len(unexpected)}), shape mismatches {mismatched[:10]} ({len(mismatched)})"
        )


def _plan(
    model_state: dict[str, Tensor], state_dict: dict[str, Tensor], report: LoadReport
) -> dict[str, Tensor]:
    """Sort keys into the report; return the subset to load. Raises on anything unexplained."""
    to_load: dict[str, Tensor] = {}
    missing: list[str] = []
    mismatched: list[str] = []
    for key, value in model_state.items():
        if key in SIZE_DEPENDENT_KEYS:
            report.rebuilt.append(key)
        elif key not in state_dict:
            (report.reinitialized if key.startswith(FRESH_HEAD_PREFIXES) else missing).append(key)
        elif state_dict[key].shape != value.shape:
            if key.startswith((*CLASS_DEPENDENT_PREFIXES, SEMANTIC_CLASSIFIER_PREFIX)):
                report.reinitialized.append(key)
            else:
                mismatched.append(_mismatch(key, state_dict[key], value))
        else:
            to_load[key] = state_dict[key]
            report.kept.append(key)
    report.ignored = sorted(set(state_dict) - set(model_state))
    if missing or mismatched:
        raise CheckpointError(
            f"{report.source} does not fit this model (is it for another size?): "
            f"{len(missing)} missing keys {missing[:6]}, {len(mismatched)} shape mismatches "
            f"{mismatched[:6]}"
        )
    return to_load


def load_checkpoint(
    model: DFine | DFineSemantic,
    source: Path | str | dict[str, Any],
    strict: bool = False,
    class_names: list[str] | None = None,
) -> LoadReport:
    """Load weights into `model` in place.

    Args:
        model: a (non-deployed) `DFine`, or a `DFineSemantic` (it takes the backbone and
            encoder of any D-FINE checkpoint of its size; its head starts fresh unless the
            checkpoint is a semantic one, whose classifier is re-initialised for another class
            count).
        source: checkpoint file or an already loaded checkpoint dict.
        strict: demand an exact key and shape match (size-dependent buffers included).
        class_names: the model's class names; when the class heads differ in size, the rows of
            classes the checkpoint also has (by name: a dfseg checkpoint's manifest, or COCO's 80
            for an official checkpoint with 80 classes) are kept instead of re-initialised.

    Returns:
        A `LoadReport`. Class heads and `denoising_class_embed` whose shape differs (another
        class count) are re-initialised; a mask head absent from the checkpoint stays fresh;
        anchors and valid mask are rebuilt for the model's own input size.

    Raises:
        CheckpointError: unreadable file, no weights inside, missing keys or shape mismatches
            outside the class heads (or any difference when strict).
    """
    if model.is_deployed:
        raise CheckpointError("load the checkpoint before calling deploy() on the model")
    label = "<dict>" if isinstance(source, dict) else str(source)
    checkpoint = source if isinstance(source, dict) else read_checkpoint(Path(source))
    state_dict, container = extract_state_dict(checkpoint, label)
    model_state = model.state_dict()
    if strict:
        _strict_check(model_state, state_dict, label)
    report = LoadReport(source=label, container=container)
    to_load = _plan(model_state, state_dict, report)
    if isinstance(model, DFine) and any(
        key.startswith(CLASS_DEPENDENT_PREFIXES) for key in report.reinitialized
    ):
        model.decoder.reset_class_heads()
        if class_names is not None:
            source_names = _source_class_names(checkpoint, state_dict)
            if source_names is not None:
                _copy_class_rows(model, state_dict, class_names, source_names, report)
    result = model.load_state_dict(to_load, strict=False)
    unexpected_missing = set(result.missing_keys) - set(report.reinitialized) - set(report.rebuilt)
    if unexpected_missing:  # a key present in model_state but refused by load_state_dict
        raise CheckpointError(f"{label}: could not load {sorted(unexpected_missing)[:10]}")
    return report


def _source_class_names(checkpoint: Any, state_dict: dict[str, Tensor]) -> list[str] | None:
    """The checkpoint's class names: its dfseg manifest's, or COCO's for an official 80-class
    head; None when unknown (e.g. Objects365)."""
    from dfseg.config.coco_classes import COCO_CLASSES

    manifest = checkpoint.get("manifest") if isinstance(checkpoint, dict) else None
    if isinstance(manifest, dict) and isinstance(manifest.get("class_names"), list):
        return [str(name) for name in manifest["class_names"]]
    bias = state_dict.get("decoder.enc_score_head.bias")
    if bias is not None and bias.shape[0] == len(COCO_CLASSES):
        return list(COCO_CLASSES)
    return None


@torch.no_grad()
def _copy_class_rows(
    model: DFine,
    state_dict: dict[str, Tensor],
    class_names: list[str],
    source_names: list[str],
    report: LoadReport,
) -> None:
    """Copy the class-head rows of same-named classes into the freshly initialised heads."""
    from dfseg.config.coco_classes import class_rows

    pairs = [
        (i, row) for i, row in enumerate(class_rows(class_names, source_names)) if row is not None
    ]
    if not pairs:
        return
    ours = torch.tensor([i for i, _ in pairs])
    theirs = torch.tensor([row for _, row in pairs])
    model_state = model.state_dict()
    for key in report.reinitialized:
        if not key.startswith(CLASS_DEPENDENT_PREFIXES) or key not in state_dict:
            continue
        target, stored = model_state[key], state_dict[key]
        if target.shape[1:] != stored.shape[1:]:
            continue
        target[ours] = stored[theirs].to(target.dtype)
        if key.startswith("decoder.denoising_class_embed."):
            target[-1] = stored[-1].to(target.dtype)  # the padding ("no class") row
    report.mapped_classes = {class_names[i]: row for i, row in pairs}
