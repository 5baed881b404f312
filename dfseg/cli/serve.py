"""`dfseg serve`: an HTTP inference server (FastAPI + uvicorn) with dynamic micro-batching."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from dfseg.cli import render
from dfseg.cli.common import cpu_threads
from dfseg.cli.run_target import MODEL_ARG
from dfseg.config.choices import Backend


def serve(
    target: Path = MODEL_ARG,
    host: str = typer.Option("127.0.0.1", "--host", help="Interface; 0.0.0.0 to serve others."),
    port: int = typer.Option(8000, "--port", min=0, max=65535),
    backend: Backend | None = typer.Option(None, "--backend", help="Backend (default: auto)."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, or an OpenVINO device."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="CPU threads in all."),
    precision: str | None = typer.Option(None, "--precision", help="OpenVINO precision."),
    conf: float | None = typer.Option(
        None, "--conf", min=0.0, max=1.0, help="Default threshold (default: the tuned one)."
    ),
    max_batch: int | None = typer.Option(
        None,
        "--max-batch",
        min=1,
        help="Most images per model call (1: no micro-batching; default: 8 on CUDA, 1 on CPU, "
        "where batching measured no gain).",
    ),
    max_wait_ms: float = typer.Option(
        5.0, "--max-wait-ms", min=0.0, help="Longest a request waits for others to join it."
    ),
    workers: int = typer.Option(1, "--workers", min=1, help="Processes, each with the model."),
    max_body_mb: float = typer.Option(20.0, "--max-body-mb", min=0.001, help="Largest body."),
    max_pixels: int = typer.Option(40_000_000, "--max-pixels", min=1, help="Largest image."),
    masks: str = typer.Option("polygons", "--masks", help="Default masks: polygons, rle, none."),
) -> None:
    """Serve a model over HTTP: POST /predict, GET /health, GET /model, docs at /docs."""
    from dfseg.serve.extras import require

    require("serve")
    import uvicorn

    from dfseg.serve.options import OPTIONS_ENV, ServeOptions
    from dfseg.serve.server import create_app, load_state

    total = cpu_threads(threads, "serve", device)
    if max_batch is None:
        max_batch = 8 if (device or "").startswith("cuda") else 1
    options = ServeOptions(
        artifact=str(target), backend=None if backend in (None, "auto") else backend,
        device=device, threads=max(1, total // workers), precision=precision, conf=conf,
        max_batch=max_batch, max_wait_ms=max_wait_ms, max_body_mb=max_body_mb,
        max_pixels=max_pixels, masks=masks,  # type: ignore[arg-type]  # checked by ServeOptions
    )  # fmt: skip
    state = load_state(options)  # a bad artifact is a clear error before anything listens
    url = f"http://{host}:{port}"
    if state.batcher.max_batch < max_batch:
        render.warn(
            f"the artifact takes at most {state.batcher.max_batch} image(s) per call, so requests "
            "are batched up to that; export with export.dynamic_batch=true to batch more"
        )
    render.info(
        f"serving {state.artifact} ({state.predictor.task}, {state.predictor.backend.name}) on "
        f"{url}: max batch {state.batcher.max_batch}, wait {max_wait_ms:g} ms, "
        f"{workers} worker(s); API docs at {url}/docs"
    )
    if workers == 1:
        uvicorn.run(create_app(options, state), host=host, port=port, log_level="info")
        return
    state.batcher.close()  # each worker process loads its own model
    os.environ[OPTIONS_ENV] = options.to_json()
    uvicorn.run(
        "dfseg.serve.server:app_from_env", factory=True, host=host, port=port, workers=workers,
        log_level="info",
    )  # fmt: skip
