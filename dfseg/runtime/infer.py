"""`infer`: run a `Predictor` over images, folders, globs, videos or a webcam and write the
enabled outputs into a new folder (`<run>/infer`, `infer-2`, ...)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from pydantic import BaseModel

from dfseg.config import ProjectConfig
from dfseg.config.deploy import InferConfig
from dfseg.config.tasks import task_spec
from dfseg.runtime.artifacts import resolve_artifact
from dfseg.runtime.predictor import Predictor, load_predictor
from dfseg.runtime.sinks import (
    AnnotatedImages,
    AnnotatedVideos,
    Crops,
    JsonLines,
    Sink,
    VideoInfo,
    YoloLabels,
)
from dfseg.runtime.sources import Frame, Source, SourceScan, VideoStream, open_sources
from dfseg.structures.progress import ProgressCallback, ProgressEvent, report
from dfseg.structures.run_folders import create_numbered_dir
from dfseg.structures.run_layout import RunFolder

INFER_STEM = "infer"


@dataclass(frozen=True)
class InferOptions:
    """What `infer` writes (mirrors the project's `infer:` section).

    Attributes:
        backend, device, threads, precision, conf, class_conf, rect, max_det: how to load and
            run the model (see `load_predictor`; conf None: the manifest's tuned threshold).
        batch: frames per backend call.
        save_images: annotated images and videos.
        save_txt: YOLO txt labels; save_conf appends the score to each row.
        save_crops: one image per detection, grown by `crop_padding` pixels per side.
        save_json: predictions.jsonl, one line per image/frame.
        line_width: box line width (None: from the image size).
    """

    backend: str | None = None
    device: str | None = None
    threads: int | None = None
    precision: str | None = None
    conf: float | None = None
    class_conf: Mapping[str, float] = field(default_factory=dict)
    rect: bool = False
    max_det: int = 300
    batch: int = 1
    save_images: bool = True
    save_txt: bool = False
    save_conf: bool = False
    save_crops: bool = False
    crop_padding: int = 0
    save_json: bool = True
    line_width: int | None = None


class InferReport(BaseModel):
    """What `infer` did.

    Attributes:
        out_dir: the folder written.
        images / videos / frames: still images predicted, videos read, video frames predicted.
        unreadable: "path: reason" for every file or frame that could not be read (skipped).
        detections: total detections; per_class: by class name.
        timing_ms: mean per-frame milliseconds of preprocess, inference, postprocess, total.
        seconds: wall time, outputs included.
    """

    out_dir: str
    backend: str
    images: int = 0
    videos: int = 0
    frames: int = 0
    unreadable: list[str] = []
    detections: int = 0
    per_class: dict[str, int] = {}
    timing_ms: dict[str, float] = {}
    seconds: float = 0.0


def infer_options(project: ProjectConfig | None, **options: object) -> InferOptions:
    """`InferOptions` from a project's `infer:` section (the defaults without a project), then
    the keyword `options` (None values ignored), as `dfseg infer` merges its flags. The project
    of a target: `resolve_target(target).project()` (the file given, or the run's)."""
    section = (project.infer if project is not None else InferConfig()).model_dump()
    values = {**section, **{key: value for key, value in options.items() if value is not None}}
    names = {f.name for f in fields(InferOptions)}
    return InferOptions(**{key: value for key, value in values.items() if key in names})


def build_sinks(out_dir: Path, options: InferOptions, segment: bool) -> list[Sink]:
    """The sinks `options` enables."""
    sinks: list[Sink] = []
    if options.save_images:
        sinks += [
            AnnotatedImages(out_dir, options.line_width),
            AnnotatedVideos(out_dir, options.line_width),
        ]
    if options.save_txt:
        sinks.append(YoloLabels(out_dir, options.save_conf, segment))
    if options.save_crops:
        sinks.append(Crops(out_dir, options.crop_padding))
    if options.save_json:
        sinks.append(JsonLines(out_dir, segment))
    return sinks


def infer(
    predictor: Predictor,
    scan: SourceScan,
    out_dir: Path,
    options: InferOptions,
    progress: ProgressCallback | None = None,
) -> InferReport:
    """Predict every frame of `scan` and write the outputs into `out_dir` (created).

    Unreadable files and frames are recorded in the report (and the JSONL) and skipped.
    """
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    result = InferReport(out_dir=str(out_dir), backend=predictor.backend.name)
    result.unreadable = [f"{path}: {reason}" for path, reason in scan.unreadable]
    sinks = build_sinks(out_dir, options, task_spec(predictor.task).instance_masks)
    counts: Counter[str] = Counter()
    total, done = scan.total, 0
    predictor.warmup()  # the reported speed is steady-state, as in `dfseg bench`
    try:
        for source in scan.sources:
            video = _video_info(source)
            result.videos += video is not None
            for batch in _batches(source.frames(), options.batch):
                _predict_batch(predictor, batch, video, sinks, result, counts)
                done += len(batch)
                report(progress, ProgressEvent("infer", done, total, {"det": result.detections}))
    finally:
        for sink in sinks:
            sink.close()
    result.per_class = dict(counts.most_common())
    result.timing_ms = {k: round(v, 2) for k, v in predictor.times.per_image_ms().items()}
    result.seconds = round(time.perf_counter() - started, 2)
    return result


def _video_info(source: Source) -> VideoInfo | None:
    if isinstance(source, VideoStream):
        return VideoInfo(source.label, source.stem, source.fps, source.size_wh)
    return None


def _batches(frames: Iterator[Frame], size: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _predict_batch(
    predictor: Predictor,
    batch: list[Frame],
    video: VideoInfo | None,
    sinks: list[Sink],
    result: InferReport,
    counts: Counter[str],
) -> None:
    readable = [frame for frame in batch if frame.image is not None]
    detections = predictor.predict_arrays([f.image for f in readable]) if readable else []  # type: ignore[misc]
    found = dict(zip((id(f) for f in readable), detections, strict=True))
    for frame in batch:
        if frame.image is None:
            result.unreadable.append(frame.error or frame.path)
            for sink in sinks:
                sink.write_unreadable(frame)
            continue
        frame_detections = found[id(frame)]
        if video is None:
            result.images += 1
        else:
            result.frames += 1
        result.detections += len(frame_detections)
        counts.update(frame_detections.names)
        for sink in sinks:
            sink.write(frame, frame_detections, video)


def run_infer(
    target: Path,
    source: str | Path,
    options: InferOptions,
    progress: ProgressCallback | None = None,
) -> InferReport:
    """`dfseg infer` as a function: find the artifact, open the sources, predict, write.

    Args:
        target: a model file, export folder, run folder or project file (see
            `resolve_artifact`).
        source: an image, folder, glob, video, folder of videos, or webcam index.
        options: how to run and what to write.
        progress: receives "infer" events (frames done of the total, when known).

    Returns:
        The report; outputs are in a new `infer` folder of the artifact's run (or beside the
        artifact when it belongs to no run).
    """
    backend = None if options.backend in (None, "auto") else options.backend
    artifact = resolve_artifact(target, backend)
    predictor = load_predictor(
        artifact, backend=backend, device=options.device, conf=options.conf,
        class_conf=options.class_conf, threads=options.threads, precision=options.precision,
        rect=options.rect, max_det=options.max_det, batch_size=options.batch,
    )  # fmt: skip
    scan = open_sources(source)
    run = RunFolder.containing(artifact)
    out_dir = create_numbered_dir(run.path if run is not None else artifact.parent, INFER_STEM)
    return infer(predictor, scan, out_dir, options, progress)
