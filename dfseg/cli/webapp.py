"""`dfseg app`: a web UI (Gradio) to try a run's models on images and videos and look at the run."""

from __future__ import annotations

from pathlib import Path

import typer

from dfseg.cli import render
from dfseg.cli.common import cpu_threads
from dfseg.cli.run_target import MODEL_ARG


def app(
    target: Path = MODEL_ARG,
    host: str = typer.Option("127.0.0.1", "--host", help="Interface; 0.0.0.0 to serve others."),
    port: int = typer.Option(7860, "--port", min=0, max=65535),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, or an OpenVINO device."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="CPU inference threads."),
) -> None:
    """Open a web UI on a run: predict images, webcam and videos with any of its models; see its
    curves, plots, bench table and error gallery."""
    from dfseg.serve.extras import require

    require("app")
    from dfseg.serve.ui import launch

    chosen = cpu_threads(threads, "app", device)
    render.info(f"dfseg app on http://{host}:{port} (Ctrl+C to stop)")
    launch(target, host, port, chosen, device)
