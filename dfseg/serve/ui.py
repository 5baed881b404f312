"""`dfseg app`: a Gradio web UI on a run, an export or a model file.

Predict tab: an image (upload, webcam, clipboard) or a short video, any model of the run, a
confidence slider; the annotated result, a detections table and JSON / YOLO txt downloads.
Run tab: the training curves (results.csv), the run's plots, the newest bench table and error
gallery. Models load once and are reused; a bad upload is a message in the page.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from dfseg.analysis.run_contents import RunContents, describe_run
from dfseg.runtime.images import as_bgr_array
from dfseg.runtime.predictor import Predictor, load_predictor
from dfseg.runtime.records import detection_records
from dfseg.runtime.sinks import yolo_lines
from dfseg.structures import Detections

TABLE_HEADERS = ["#", "class", "score", "x1", "y1", "x2", "y2"]
VIDEO_FRAMES = 300  # a "short video": the app is for looking, `dfseg infer` is for whole files
BENCH_COLUMNS = ("name", "backend", "inference_precision", "status", "metric", "drop",
                 "box_map50_95", "mask_map50_95", "total_ms_median", "fps")  # fmt: skip


class ModelCache:
    """Predictors by model file, loaded on first use and kept; one lock each, as Gradio calls
    handlers from several threads."""

    def __init__(self, threads: int | None, device: str | None) -> None:
        self.threads, self.device = threads, device
        self._models: dict[Path, tuple[Predictor, threading.Lock]] = {}
        self._lock = threading.Lock()

    def get(self, path: Path) -> tuple[Predictor, threading.Lock]:
        with self._lock:
            if path not in self._models:
                predictor = load_predictor(path, device=self.device, threads=self.threads)
                self._models[path] = (predictor, threading.Lock())
            return self._models[path]


class AppSession:
    """The handlers of the UI, without Gradio (so they are testable as functions).

    Args:
        contents: the run's contents (`describe_run`).
        threads, device: how models are run.
        max_pixels: largest image accepted.
    """

    def __init__(
        self,
        contents: RunContents,
        threads: int | None = None,
        device: str | None = None,
        max_pixels: int = 40_000_000,
    ) -> None:
        self.contents, self.max_pixels = contents, max_pixels
        self.models = ModelCache(threads, device)
        self.out_dir = Path(tempfile.mkdtemp(prefix="dfseg-app-"))
        self._count = 0

    @property
    def choices(self) -> list[tuple[str, str]]:
        return [(entry.label, str(entry.path)) for entry in self.contents.artifacts]

    def default_conf(self, artifact: str) -> float:
        return float(self.models.get(Path(artifact))[0].settings.conf)

    def predict_image(
        self, image_rgb: np.ndarray | None, artifact: str, conf: float, nms_iou: float = 1.0
    ) -> tuple[np.ndarray, list[list[Any]], str, list[str]]:
        """(annotated RGB image, table rows, summary line, [JSON file, YOLO txt file]);
        `nms_iou` below 1 adds a class-aware NMS over the model's detections.

        Raises:
            UserFacingError: no image, an image too large, an unknown model.
        """
        if image_rgb is None:
            raise UserFacingError("upload an image first (or take one with the webcam)")
        height, width = image_rgb.shape[:2]
        if height * width > self.max_pixels:
            raise UserFacingError(
                f"the image is {width}x{height} pixels, over the limit of {self.max_pixels}"
            )
        predictor, lock = self._model(artifact)
        bgr = np.ascontiguousarray(as_bgr_array(image_rgb)[:, :, ::-1])  # grey, RGBA -> RGB
        with lock:
            detections = predictor.predict_batch([bgr], conf=conf, nms_iou=_nms(nms_iou))[0]
        annotated = detections.plot(bgr)[:, :, ::-1]
        files = self._write_downloads(detections, predictor.task == "segment")
        return annotated, table_rows(detections), summary(detections), files

    def predict_video(
        self, video: str | None, artifact: str, conf: float, nms_iou: float = 1.0
    ) -> tuple[str, str]:
        """(annotated WebM video path, summary line) of the first `VIDEO_FRAMES` frames."""
        import cv2

        if not video:
            raise UserFacingError("upload a video first")
        capture = cv2.VideoCapture(video)
        if not capture.isOpened():
            raise UserFacingError("the file is not a video OpenCV can read")
        predictor, lock = self._model(artifact)
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        self._count += 1
        target = self.out_dir / f"video-{self._count}.webm"
        writer, frames, found = None, 0, 0
        try:
            while frames < VIDEO_FRAMES:
                ok, frame = capture.read()
                if not ok:
                    break
                with lock:
                    detections = predictor.predict_batch([frame], conf=conf, nms_iou=_nms(nms_iou))[
                        0
                    ]
                if writer is None:
                    fourcc = cv2.VideoWriter.fourcc(*"VP80")  # plays in every browser
                    size = (frame.shape[1], frame.shape[0])
                    writer = cv2.VideoWriter(str(target), fourcc, fps, size)
                writer.write(detections.plot(frame))
                frames, found = frames + 1, found + len(detections)
        finally:
            capture.release()
            if writer is not None:
                writer.release()
        if frames == 0:
            raise UserFacingError("the video has no readable frames")
        return str(target), f"{frames} frames, {found} detections"

    def _model(self, artifact: str) -> tuple[Predictor, threading.Lock]:
        allowed = {str(entry.path) for entry in self.contents.artifacts}
        if artifact not in allowed:  # the page can only name models of this run
            raise UserFacingError(f"unknown model {artifact!r}")
        return self.models.get(Path(artifact))

    def _write_downloads(self, detections: Detections, segment: bool) -> list[str]:
        self._count += 1
        stem = self.out_dir / f"prediction-{self._count}"
        record = {"image_size": list(detections.image_size),
                  "detections": detection_records(detections)}  # fmt: skip
        json_path = stem.with_suffix(".json")
        json_path.write_text(json.dumps(record, indent=1), encoding="utf-8")
        txt_path = stem.with_suffix(".txt")
        txt_path.write_text("".join(yolo_lines(detections, True, segment)), encoding="utf-8")
        return [str(json_path), str(txt_path)]


class UserFacingError(Exception):
    """A problem with what the user gave, shown in the page."""


def table_rows(detections: Detections) -> list[list[Any]]:
    """One row per detection: index, class, score, box corners in original pixels."""
    return [
        [index, name, round(float(score), 3), *(round(float(v), 1) for v in box)]
        for index, (name, score, box) in enumerate(
            zip(detections.names, detections.scores, detections.boxes_xyxy, strict=True)
        )
    ]


def summary(detections: Detections) -> str:
    counts: dict[str, int] = {}
    for name in detections.names:
        counts[name] = counts.get(name, 0) + 1
    parts = ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))
    return f"{len(detections)} detections" + (f": {parts}" if parts else "")


def _nms(iou: float) -> float | None:
    """The slider's IoU as a setting: 1 (the far right) means no extra NMS."""
    return None if iou >= 1.0 else float(iou)


def results_figure(contents: RunContents) -> Any:
    """Matplotlib figure of results.csv: losses and metrics per epoch (None without a CSV)."""
    if contents.results_csv is None:
        return None
    import polars as pl

    from dfseg.metrics.plots.canvas import new_figure

    frame = pl.read_csv(contents.results_csv)
    numeric = [c for c in frame.columns if c != "epoch" and frame[c].dtype.is_numeric()]
    losses = [c for c in numeric if "loss" in c]
    metrics = [c for c in numeric if c not in losses and ("map" in c or "f1" in c)]
    figure = new_figure(11, 3.6)  # no pyplot: Gradio calls handlers from several threads
    axes = figure.subplots(1, 2)
    epoch = frame["epoch"] if "epoch" in frame.columns else np.arange(len(frame))
    for axis, columns, title in ((axes[0], losses, "losses"), (axes[1], metrics, "metrics")):
        for column in columns:
            axis.plot(epoch, frame[column], label=column, marker=".")
        axis.set_title(title)
        axis.set_xlabel("epoch")
        if columns:
            axis.legend(fontsize=7)
    return figure


def bench_table(contents: RunContents) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of the newest bench, the columns that exist."""
    if not contents.bench_rows:
        return list(BENCH_COLUMNS[:4]), []
    headers = [c for c in BENCH_COLUMNS if c in contents.bench_rows[0]]
    return headers, [[row.get(c, "") for c in headers] for row in contents.bench_rows]


def build_ui(session: AppSession) -> Any:
    """The Gradio Blocks of the app."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    def guarded(function: Any) -> Any:
        def handler(*args: Any) -> Any:
            try:
                return function(*args)
            except UserFacingError as exc:
                raise gr.Error(str(exc)) from None

        return handler

    choices = session.choices
    first = choices[0][1]
    contents = session.contents
    title = f"dfseg: {contents.run or session.contents.artifacts[0].path}"
    with gr.Blocks(title="dfseg") as blocks:
        gr.Markdown(f"## {title}")
        with gr.Tab("Predict"):
            with gr.Row():
                artifact = gr.Dropdown(choices, value=first, label="Model", elem_id="artifact")
                conf = gr.Slider(0.0, 1.0, value=round(session.default_conf(first), 3), step=0.001,
                                 label="Confidence", elem_id="conf")  # fmt: skip
                nms = gr.Slider(0.05, 1.0, value=1.0, step=0.05, elem_id="nms",
                                label="Extra NMS IoU (1: off)")  # fmt: skip
            with gr.Tab("Image"):
                with gr.Row():
                    image = gr.Image(sources=["upload", "webcam", "clipboard"], type="numpy",
                                     label="Image", elem_id="input-image")  # fmt: skip
                    result = gr.Image(label="Result", elem_id="result-image", interactive=False)
                button = gr.Button("Predict", variant="primary", elem_id="predict")
                found = gr.Markdown(elem_id="summary")
                table = gr.Dataframe(headers=TABLE_HEADERS, elem_id="detections",
                                     interactive=False, max_height=400)  # fmt: skip
                downloads = gr.File(label="Download JSON / YOLO txt", file_count="multiple")
                inputs = [image, artifact, conf, nms]
                outputs = [result, table, found, downloads]
                button.click(guarded(session.predict_image), inputs, outputs)
                for slider in (conf, nms):
                    slider.change(
                        guarded(session.predict_image), inputs, outputs, trigger_mode="always_last"
                    )
            with gr.Tab("Video"):
                with gr.Row():
                    video = gr.Video(label=f"Video (first {VIDEO_FRAMES} frames)")
                    video_result = gr.Video(label="Result", interactive=False)
                video_button = gr.Button("Predict video", variant="primary")
                video_summary = gr.Markdown()
                video_button.click(guarded(session.predict_video), [video, artifact, conf, nms],
                                   [video_result, video_summary])  # fmt: skip
        with gr.Tab("Run"):
            if contents.run is None:
                gr.Markdown("This model lies in no run folder: no curves, plots or bench.")
            else:
                gr.Plot(results_figure(contents), label="Training curves (results.csv)")
                if contents.plots:
                    gr.Gallery([str(p) for p in contents.plots], label="Plots", columns=3)
                headers, rows = bench_table(contents)
                gr.Markdown("### Bench" if rows else "### Bench: none yet (`dfseg bench`)")
                if rows:
                    gr.Dataframe(rows, headers=headers, interactive=False)
                _error_gallery(gr, contents)
    return blocks


def _error_gallery(gr: Any, contents: RunContents) -> None:
    if not contents.error_gallery:
        gr.Markdown("### Errors: none yet (`dfseg errors`)")
        return
    kinds = list(contents.error_gallery)
    gr.Markdown("### Errors")
    kind = gr.Dropdown(kinds, value=kinds[0], label="Error type")
    gallery = gr.Gallery([str(p) for p in contents.error_gallery[kinds[0]]], columns=4)
    kind.change(lambda k: [str(p) for p in contents.error_gallery.get(k, [])], kind, gallery)


def launch(target: Path, host: str, port: int, threads: int | None, device: str | None) -> None:
    """Describe the run, build the UI and serve it until interrupted."""
    session = AppSession(describe_run(target), threads=threads, device=device)
    session.contents = viewable_copy(session.contents, session.out_dir / "run")
    blocks = build_ui(session)
    blocks.launch(
        server_name=host, server_port=port, share=False, allowed_paths=[str(session.out_dir)]
    )


def viewable_copy(contents: RunContents, folder: Path) -> RunContents:
    """The contents with plots and gallery pictures copied into `folder` (created), so the page
    sends those copies and nothing else of the run (its checkpoints stay unreachable)."""
    folder.mkdir(parents=True, exist_ok=True)

    def copy(path: Path, name: str) -> Path:
        target = folder / name
        shutil.copyfile(path, target)
        return target

    plots = [copy(path, path.name) for path in contents.plots]
    gallery = {
        kind: [copy(path, f"{kind}-{path.name}") for path in paths]
        for kind, paths in contents.error_gallery.items()
    }
    return dataclasses.replace(contents, plots=plots, error_gallery=gallery)
