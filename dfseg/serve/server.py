"""`dfseg serve`: a FastAPI app around one model, its requests micro-batched.

    POST /predict   image bytes (or multipart field `file`) -> detections in original pixels
    GET  /health    liveness and batching counters
    GET  /model     the artifact's manifest
    GET  /docs, /openapi.json

`create_app(options)` loads the model and returns the app (uvicorn runs it); `app_from_env` is
the factory uvicorn's worker processes call with `--workers N`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from dfseg import __version__
from dfseg.errors import DfsegError
from dfseg.runtime.artifacts import resolve_artifact
from dfseg.runtime.errors import ArtifactError
from dfseg.runtime.predictor import Predictor, load_predictor
from dfseg.runtime.records import MaskFormat, detection_records
from dfseg.serve.batcher import MicroBatcher
from dfseg.serve.options import ServeOptions
from dfseg.serve.request_body import RequestError, decode_image, image_bytes, read_body
from dfseg.structures.manifest import ArtifactManifest

log = logging.getLogger("dfseg.serve")


class RLE(BaseModel):
    size: list[int] = Field(description="[height, width] of the original image.")
    counts: str = Field(description="COCO compressed RLE counts.")


class DetectionRecord(BaseModel):
    label: int
    name: str
    score: float
    box_xyxy: list[float] = Field(description="x1, y1, x2, y2 in original-image pixels.")
    polygons: list[list[list[float]]] | None = Field(
        None, description="Mask outlines [[x, y], ...], largest first (masks=polygons)."
    )
    rle: RLE | None = Field(None, description="Mask as COCO RLE (masks=rle).")


class PredictResponse(BaseModel):
    image_size: list[int] = Field(description="[height, width] of the image sent.")
    detections: list[DetectionRecord]
    batch_size: int = Field(description="Images in the model call this request shared.")
    timing_ms: dict[str, float] = Field(description="decode, queue, model and total time.")


class HealthResponse(BaseModel):
    status: str
    task: str
    backend: str
    artifact: str
    max_batch: int
    requests: int
    batches: int
    mean_batch: float
    pid: int = Field(description="The worker process that answered.")


class ErrorResponse(BaseModel):
    error: str


IMAGE_BODY = {"schema": {"type": "string", "format": "binary"}}
PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "description": "The image: raw bytes, or multipart/form-data with the image as `file`.",
        "content": {
            "image/jpeg": IMAGE_BODY,
            "image/png": IMAGE_BODY,
            "application/octet-stream": IMAGE_BODY,
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Not an image, empty body, unknown class."},
    413: {"model": ErrorResponse, "description": "Body or image over the server's limits."},
    500: {"model": ErrorResponse, "description": "The model failed on this image."},
}


class ServerState:
    """The loaded model, its batcher and the limits, shared by the routes."""

    def __init__(self, options: ServeOptions, predictor: Predictor, artifact: str) -> None:
        self.options, self.predictor, self.artifact = options, predictor, artifact
        self.batcher = MicroBatcher(predictor, options.max_batch, options.max_wait_ms)


def load_state(options: ServeOptions) -> ServerState:
    """Load and warm up the model (raises `DfsegError` on a bad artifact)."""
    backend = None if options.backend in (None, "auto") else options.backend
    artifact = resolve_artifact(options.artifact, backend)
    predictor = load_predictor(
        artifact, backend=backend, device=options.device, conf=options.conf,
        threads=options.threads, precision=options.precision,
    )  # fmt: skip
    if predictor.task == "semantic":
        raise ArtifactError(
            f"{artifact} is a semantic model: `dfseg serve` returns detections and does not "
            "take semantic models yet; use `dfseg infer` (overlays and index masks) or "
            "`dfseg.load(...)` in Python"
        )
    predictor.warmup()
    return ServerState(options, predictor, str(artifact))


def create_app(options: ServeOptions, state: ServerState | None = None) -> FastAPI:
    """The app serving `options.artifact` (loaded now unless `state` is given)."""
    server = state or load_state(options)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        server.batcher.close()

    app = FastAPI(
        title="dfseg", version=__version__, lifespan=lifespan,
        description=f"D-FINE {server.predictor.task} model {server.artifact}",
    )  # fmt: skip
    _add_error_handlers(app)
    _add_routes(app, server)
    return app


def app_from_env() -> FastAPI:
    """uvicorn's factory for worker processes (`--workers N`): options from the environment."""
    return create_app(ServeOptions.from_env())


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def _request_error(_: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = jsonable_encoder(exc.errors(), custom_encoder={Exception: str})
        where = "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', ()))}: {d.get('msg', '')}" for d in details
        )
        return JSONResponse({"error": where, "detail": details}, status_code=422)


def _add_routes(app: FastAPI, server: ServerState) -> None:
    predictor = server.predictor

    @app.get("/health", response_model=HealthResponse)
    async def health() -> HealthResponse:
        stats = server.batcher.stats
        return HealthResponse(
            status="ok", task=predictor.task, backend=predictor.backend.name,
            artifact=server.artifact, max_batch=server.batcher.max_batch,
            requests=stats.requests, batches=stats.batches, mean_batch=round(stats.mean_batch, 3),
            pid=os.getpid(),
        )  # fmt: skip

    @app.get("/model", response_model=ArtifactManifest)
    async def model() -> ArtifactManifest:
        return predictor.manifest

    @app.post(
        "/predict",
        response_model=PredictResponse,
        response_model_exclude_none=True,
        responses=ERRORS,
        openapi_extra=PREDICT_BODY,
    )
    async def predict(
        request: Request,
        conf: float | None = Query(None, ge=0, le=1, description="Score threshold."),
        classes: str | None = Query(None, description="Comma-separated class ids or names."),
        masks: MaskFormat | None = Query(None, description="Mask format (segmentation)."),
        max_det: int | None = Query(None, ge=1, le=300, description="Most detections."),
        nms_iou: float | None = Query(
            None, ge=0, le=1, description="Extra class-aware NMS at this IoU (default: none)."
        ),
    ) -> dict[str, Any]:
        started = time.perf_counter()
        body = await read_body(
            request.stream(), request.headers.get("content-length"), server.options.max_body_bytes
        )
        data = image_bytes(body, request.headers.get("content-type"))
        image = await run_in_threadpool(decode_image, data, server.options.max_pixels)
        decoded = time.perf_counter()
        try:
            settings = predictor.call_settings(conf, _class_list(classes), max_det, nms_iou)
        except DfsegError as exc:
            raise RequestError(400, str(exc)) from None
        try:
            result = await asyncio.wrap_future(server.batcher.submit(image, settings))
        except Exception as exc:  # the model failed: this request fails, the server goes on
            log.exception("prediction failed")
            return JSONResponse(  # type: ignore[return-value]
                {"error": f"the model failed on this image: {exc}"}, status_code=500
            )
        mask_format = masks or server.options.masks
        records = await run_in_threadpool(detection_records, result.detections, mask_format)
        total = 1000.0 * (time.perf_counter() - started)
        return {
            "image_size": list(result.detections.image_size),
            "detections": records,
            "batch_size": result.batch_size,
            "timing_ms": {
                "decode": round(1000.0 * (decoded - started), 2),
                "queue": round(result.queue_ms, 2),
                "model": round(result.model_ms, 2),
                "total": round(total, 2),
            },
        }


def _class_list(classes: str | None) -> list[int | str] | None:
    """ "0,dog, 2" -> [0, "dog", 2]; None or blank: all classes."""
    if classes is None or not classes.strip():
        return None
    values = [value.strip() for value in classes.split(",") if value.strip()]
    return [int(value) if value.isdigit() else value for value in values]
