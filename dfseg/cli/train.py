"""`dfseg train`: train (or resume) a run; `--devices N` launches DDP through torchrun."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from dfseg.cli import render
from dfseg.cli.common import JSON_OPT, OVERRIDES_ARG, PROJECT_ARG, flag, load
from dfseg.errors import DfsegError

if TYPE_CHECKING:
    from dfseg.training.reports import TrainReport


def train(
    project: Path = PROJECT_ARG,
    overrides: list[str] | None = OVERRIDES_ARG,
    resume: bool = flag(
        False,
        "--resume",
        help="Continue the newest run (or the RUN folder given after it) where it stopped.",
    ),
    devices: int = typer.Option(1, "--devices", min=1, help="Processes (GPUs) for DDP."),
    as_json: bool = JSON_OPT,
) -> None:
    """Train a model on the project's dataset. Results go to a new run folder (exp, exp-2, ...)."""
    if devices > 1 and "WORLD_SIZE" not in os.environ:
        raise typer.Exit(code=_launch_distributed(devices))
    plain = [o for o in overrides or [] if "=" in o]
    runs = [Path(o) for o in overrides or [] if "=" not in o]
    if runs and not resume:
        raise DfsegError(f"unexpected argument {runs[0]}; overrides look like key=value")
    resume_from = None
    if resume:
        from dfseg.training.api import config_for_resume, resolve_resume

        resume_from = resolve_resume(runs[0] if runs else project)
        config = config_for_resume(resume_from, plain)
        config._source = project.resolve()  # the file the user gave, for messages
    else:
        config = load(project, plain)  # a config error answers before torch is imported

    from dfseg.cli.epoch_printer import EpochPrinter
    from dfseg.training.api import train_project

    quiet = as_json or int(os.environ.get("RANK", "0")) != 0
    with render.ProgressRenderer() as progress:
        report = train_project(
            config,
            resume_from=resume_from,
            progress=None if quiet else progress,
            hooks=[] if quiet else [EpochPrinter(progress)],
        )
    if report is None:  # a non-zero rank
        return
    if as_json:
        render.dump_json(report)
        return
    render_summary(report)


def _launch_distributed(devices: int) -> int:
    from dfseg.cli.native_stderr import real_stderr_fd
    from dfseg.training.distributed import torchrun_command

    argv = _strip_devices(sys.argv[1:])
    command = torchrun_command(devices, argv)
    render.info("launching: " + " ".join(command))
    return subprocess.call(command, stderr=real_stderr_fd())  # each rank filters its own


def _strip_devices(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--devices":
            skip = True
            continue
        if arg.startswith("--devices="):
            continue
        out.append(arg)
    return out


def _threshold_origin(report: TrainReport) -> str:
    if report.threshold_source == "fallback":
        return "no object matched on validation yet: not a tuned value"
    return "max F1" if report.threshold_source in ("bbox", "segm") else "given"


def render_summary(report: TrainReport) -> None:
    """How the run ended, its best epoch and threshold, and where it is."""
    out = render.console()
    if report.final is not None:
        out.print(render.eval_table(report.final, f"best checkpoint on {report.eval_split}"))
    if report.stopped_early:
        out.print(f"stopped early after {report.epochs_completed} epochs (no improvement)")
    elif report.time_budget is not None:
        out.print(
            f"time budget {report.time_budget:g} min: {report.epochs_completed} of "
            f"{report.max_epochs} epochs fitted (the schedule was laid out for them)"
        )
    if report.best_epoch is not None and report.best_score is not None and report.threshold is None:
        out.print(
            f"best epoch {report.best_epoch}: {report.decision_metric} {report.best_score:.4f}"
        )
    elif report.best_epoch is not None and report.best_score is not None:
        out.print(
            f"best epoch {report.best_epoch}: {report.decision_metric} {report.best_score:.4f}; "
            f"confidence threshold {report.threshold:.3f} ({_threshold_origin(report)}) saved in "
            "best.pt"
        )
    out.print(f"{report.seconds / 60:.1f} min. Results saved to [bold]{report.run_dir}[/]")
