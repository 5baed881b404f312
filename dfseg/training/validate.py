"""`validate_run`: evaluate a trained checkpoint on a split (what `dfseg val` runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict

from dfseg.config import ProjectConfig, get_settings
from dfseg.errors import DfsegError
from dfseg.metrics import EvalReport
from dfseg.nn import DFine, ModelSpec, build_model
from dfseg.structures.manifest import ArtifactManifest
from dfseg.structures.progress import ProgressCallback
from dfseg.training import artifacts
from dfseg.training.checkpoint_io import load_payload
from dfseg.training.distributed import DistributedContext, resolve_device
from dfseg.training.evaluation import EvalSettings, evaluate_annotations
from dfseg.training.project_data import load_project_data
from dfseg.training.run_dir import create_run_dir, latest_run_dir
from dfseg.training.run_plots import write_run_plots
from dfseg.training.setup import num_workers


class ValidationError(DfsegError):
    """The checkpoint or split cannot be validated."""


class ValReport(BaseModel):
    """`dfseg val` results."""

    model_config = ConfigDict(ser_json_inf_nan="strings")

    weights: str
    split: str
    images: int
    report: EvalReport
    out_dir: str
    files: dict[str, str]


def find_weights(config: ProjectConfig, weights: Path | None) -> Path:
    """`weights` (a .pt file or a run folder), else the newest run's best.pt."""
    if weights is None:
        run = latest_run_dir(config.output_root)
        if run is None:
            raise ValidationError(f"no trained run under {config.output_root}; train one first")
        weights = run
    path = weights / artifacts.BEST_CHECKPOINT if weights.is_dir() else weights
    if not path.is_file():
        raise ValidationError(f"{path}: checkpoint not found")
    return path


def load_trained(path: Path) -> tuple[DFine, ArtifactManifest]:
    """A model and its manifest from a dfseg checkpoint (best.pt or last.pt)."""
    payload = load_payload(path)
    if "manifest" not in payload or "model" not in payload:
        raise ValidationError(f"{path}: not a dfseg checkpoint (no manifest)")
    manifest = ArtifactManifest.model_validate(payload["manifest"])
    spec = ModelSpec.from_dict(manifest.model.model_dump())
    model = build_model(spec.size, spec.num_classes, spec.task, spec.image_size)
    model.load_state_dict(payload["model"])
    return model.eval(), manifest


def validate_run(
    config: ProjectConfig,
    weights: Path | None = None,
    split: Literal["val", "test"] = "val",
    conf: float | None = None,
    progress: ProgressCallback | None = None,
) -> ValReport:
    """Evaluate a checkpoint on a split; writes plots to a new `val` folder of its run.

    P/R/F1 use `conf`, else the threshold tuned after training (in the checkpoint's manifest).
    """
    torch.set_flush_denormal(True)
    path = find_weights(config, weights)
    model, manifest = load_trained(path)
    data = load_project_data(config, create_split=False)
    if data.class_names != manifest.class_names:
        raise ValidationError(
            f"{path} was trained on classes {manifest.class_names}, the project has "
            f"{data.class_names}"
        )
    split_name, images = data.eval_split(split)
    device = resolve_device(config.train.device or get_settings().device)
    model.to(device)
    settings = EvalSettings(
        input_hw=manifest.preprocessing.input_size,
        task=manifest.model.task,
        keep_ratio=manifest.preprocessing.keep_ratio,
        batch_size=config.train.batch_size,
        workers=num_workers(config),
    )
    evaluation = evaluate_annotations(
        model,
        images,
        data.class_names,
        settings,
        DistributedContext(device=device),
        threshold=manifest.threshold if conf is None else conf,
        progress=progress,
    )
    assert evaluation is not None  # single process: always the main rank
    out_dir = create_run_dir(path.parent, "val")
    files = write_run_plots(out_dir, evaluation, data.class_names, data.splits["train"])
    (out_dir / "metrics.json").write_text(evaluation.report.model_dump_json(indent=2))
    return ValReport(
        weights=str(path),
        split=split_name,
        images=len(images),
        report=evaluation.report,
        out_dir=str(out_dir),
        files=files,
    )
