"""`validate_run`: evaluate a trained checkpoint on a split (what `dfseg val` runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict

from dfseg.config import ProjectConfig, Settings, get_settings
from dfseg.config.tasks import task_spec
from dfseg.errors import DfsegError
from dfseg.metrics import EvalReport
from dfseg.metrics.semantic import SemanticReport, plot_semantic_confusion
from dfseg.nn.trained import load_trained_model
from dfseg.runtime.threads import choose_threads
from dfseg.structures.progress import ProgressCallback
from dfseg.structures.run_folders import create_numbered_dir
from dfseg.structures.run_layout import newest_run, resolve_target
from dfseg.training.artifacts import PER_CLASS_FILE, write_class_table
from dfseg.training.distributed import DistributedContext, resolve_device
from dfseg.training.evaluation import EvalSettings, Evaluation, evaluate_annotations
from dfseg.training.project_data import load_project_data
from dfseg.training.run_plots import write_run_plots
from dfseg.training.semantic_evaluation import SemanticEvaluation, evaluate_semantic
from dfseg.training.setup import num_workers


class ValidationError(DfsegError):
    """The checkpoint or split cannot be validated."""


class ValReport(BaseModel):
    """`dfseg val` results."""

    model_config = ConfigDict(ser_json_inf_nan="strings")

    weights: str
    split: str
    images: int
    report: EvalReport | SemanticReport
    out_dir: str
    files: dict[str, str]


def find_weights(config: ProjectConfig, weights: Path | None) -> Path:
    """`weights` (a .pt file or a run folder), else the project's newest run's best.pt."""
    if weights is None:
        return newest_run(config.output_root).best
    return resolve_target(weights).checkpoint("best")


def validate_run(
    config: ProjectConfig,
    weights: Path | None = None,
    split: Literal["val", "test"] = "val",
    conf: float | None = None,
    progress: ProgressCallback | None = None,
    settings: Settings | None = None,
) -> ValReport:
    """Evaluate a checkpoint on a split; writes plots to a new `val` folder of its run.

    P/R/F1 use `conf`, else the threshold tuned after training (in the checkpoint's manifest).
    `settings` are the machine's (device, workers); None: the environment's.
    """
    settings = settings or get_settings()
    torch.set_flush_denormal(True)
    torch.set_num_threads(choose_threads(settings.threads).threads)
    path = find_weights(config, weights)
    model, manifest = load_trained_model(path)
    data = load_project_data(config, create_split=False)
    if data.class_names != manifest.class_names:
        raise ValidationError(
            f"{path} was trained on classes {manifest.class_names}, the project has "
            f"{data.class_names}"
        )
    split_name, images = data.eval_split(split)
    device = resolve_device(config.train.device or settings.device)
    model.to(device)
    eval_settings = EvalSettings(
        input_hw=manifest.preprocessing.input_size,
        task=manifest.model.task,
        keep_ratio=manifest.preprocessing.keep_ratio,
        batch_size=config.train.eval_batch_size,
        workers=num_workers(config.train, settings),
    )
    context = DistributedContext(device=device)
    evaluation: Evaluation | SemanticEvaluation | None
    if task_spec(manifest.model.task).semantic:
        evaluation = evaluate_semantic(
            model, images, data.class_names, eval_settings, context, progress
        )
    else:
        evaluation = evaluate_annotations(
            model,
            images,
            data.class_names,
            eval_settings,
            context,
            threshold=manifest.threshold if conf is None else conf,
            progress=progress,
        )
    assert evaluation is not None  # single process: always the main rank
    out_dir = create_numbered_dir(path.parent, "val")
    if isinstance(evaluation, SemanticEvaluation):
        plot = plot_semantic_confusion(evaluation.report, out_dir / "confusion_matrix.png")
        files = {"confusion_matrix": str(plot)}
        files["per_class"] = str(write_class_table(out_dir / PER_CLASS_FILE, evaluation.report))
    else:
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
