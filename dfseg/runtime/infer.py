"""`infer`: run a `Predictor` over images, folders, globs, videos or a webcam and write the
enabled outputs into a new folder (`<run>/infer`, `infer-2`, ...)."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from dfseg.config import ProjectConfig
from dfseg.config.deploy import InferConfig, TrackerConfig
from dfseg.config.tasks import task_spec
from dfseg.runtime.artifacts import resolve_artifact
from dfseg.runtime.errors import BackendError
from dfseg.runtime.pipeline import ReadAhead, WriteBehind
from dfseg.runtime.predictor import Predictor, load_predictor
from dfseg.runtime.sinks import (
    AnnotatedImages,
    AnnotatedVideos,
    Crops,
    IndexMasks,
    JsonLines,
    MotChallenge,
    Sink,
    VideoInfo,
    YoloLabels,
)
from dfseg.runtime.sources import Frame, Source, SourceScan, VideoStream, open_sources
from dfseg.runtime.tiling import tile_settings
from dfseg.structures import Detections
from dfseg.structures.progress import ProgressCallback, ProgressEvent, report
from dfseg.structures.run_folders import create_numbered_dir
from dfseg.structures.run_layout import RunFolder
from dfseg.tracking import Tracker, build_tracker

INFER_STEM = "infer"


@dataclass(frozen=True)
class InferOptions:
    """What `infer` writes (mirrors the project's `infer:` section).

    Attributes:
        backend, device, threads, precision, conf, class_conf, rect, max_det: how to load and
            run the model (see `load_predictor`; conf None: the manifest's tuned threshold).
        batch: frames per backend call (at least `streams`).
        streams: OpenVINO throughput mode (see `BackendOptions.streams`).
        save_images: annotated images and videos.
        save_txt: YOLO txt labels; save_conf appends the score to each row.
        save_crops: one image per detection, grown by `crop_padding` pixels per side.
        save_json: predictions.jsonl, one line per image/frame.
        line_width: box line width (None: from the image size).
        track: follow objects over the frames of each video or image sequence (track ids in
            every output, MOTChallenge files in `mot/`); tracker: its `TrackerConfig` fields.
        stride, max_fps: which video frames are predicted (see `VideoStream`).
        tile: `TileConfig` fields (size None: whole images).
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
    streams: int | None = None
    save_images: bool = True
    save_txt: bool = False
    save_conf: bool = False
    save_crops: bool = False
    crop_padding: int = 0
    save_json: bool = True
    line_width: int | None = None
    track: bool = False
    tracker: Mapping[str, Any] = field(default_factory=dict)
    stride: int = 1
    max_fps: float | None = None
    tile: Mapping[str, Any] = field(default_factory=dict)


class InferReport(BaseModel):
    """What `infer` did.

    Attributes:
        out_dir: the folder written.
        images / videos / frames: still images predicted, videos read, video frames predicted.
        unreadable: "path: reason" for every file or frame that could not be read (skipped).
        task: the model's task.
        detections: total detections; per_class: by class name (semantic models: images and
            frames showing the class).
        timing_ms: mean per-frame milliseconds of preprocess, inference, postprocess, total.
        seconds: wall time, outputs included; frames_per_second: images and frames predicted
            per second of it (decoding and writing included).
        tracks: distinct track ids given (when tracking).
        interrupted: stopped early by Ctrl-C (the outputs written so far are complete files).
    """

    out_dir: str
    backend: str
    task: str = "detect"
    images: int = 0
    videos: int = 0
    frames: int = 0
    unreadable: list[str] = []
    detections: int = 0
    per_class: dict[str, int] = {}
    timing_ms: dict[str, float] = {}
    seconds: float = 0.0
    frames_per_second: float = 0.0
    tracks: int = 0
    interrupted: bool = False


def infer_options(project: ProjectConfig | None, **options: object) -> InferOptions:
    """`InferOptions` from a project's `infer:` section (the defaults without a project), then
    the keyword `options` (None values ignored), as `dfseg infer` merges its flags. The project
    of a target: `resolve_target(target).project()` (the file given, or the run's)."""
    section = (project.infer if project is not None else InferConfig()).model_dump()
    given = {key: value for key, value in options.items() if value is not None}
    for key in [k for k in given if k.startswith("tile_")]:  # --tile-overlap -> tile.overlap
        section["tile"] = {**section["tile"], key.removeprefix("tile_"): given.pop(key)}
    values = {**section, **given}
    names = {f.name for f in fields(InferOptions)}
    return InferOptions(**{key: value for key, value in values.items() if key in names})


def build_sinks(
    out_dir: Path, options: InferOptions, segment: bool, semantic: bool = False
) -> list[Sink]:
    """The sinks `options` enables (semantic models: overlays, index masks and the JSONL)."""
    sinks: list[Sink] = []
    if options.save_images:
        sinks += [
            AnnotatedImages(out_dir, options.line_width),
            AnnotatedVideos(out_dir, options.line_width),
        ]
    if semantic:
        sinks.append(IndexMasks(out_dir))
        if options.save_json:
            sinks.append(JsonLines(out_dir, segment))
        return sinks
    if options.save_txt:
        sinks.append(YoloLabels(out_dir, options.save_conf, segment))
    if options.save_crops:
        sinks.append(Crops(out_dir, options.crop_padding))
    if options.save_json:
        sinks.append(JsonLines(out_dir, segment))
    if options.track:
        sinks.append(MotChallenge(out_dir))
    return sinks


def infer(
    predictor: Predictor,
    scan: SourceScan,
    out_dir: Path,
    options: InferOptions,
    progress: ProgressCallback | None = None,
) -> InferReport:
    """Predict every frame of `scan` and write the outputs into `out_dir` (created).

    Decoding runs ahead in a reader thread and drawing/encoding behind in a writer thread, so
    the model rarely waits for I/O. Unreadable files and frames are recorded in the report (and
    the JSONL) and skipped. Ctrl-C stops after the current batch: what was predicted is
    written and every file closed (an annotated video plays), and the report says
    `interrupted`.
    """
    spec = task_spec(predictor.task)
    if spec.semantic:
        _refuse_detection_outputs(options)
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    result = InferReport(out_dir=str(out_dir), backend=predictor.backend.name, task=predictor.task)
    result.unreadable = [f"{path}: {reason}" for path, reason in scan.unreadable]
    sinks = build_sinks(out_dir, options, spec.instance_masks, spec.semantic)
    counts: Counter[str] = Counter()
    track_ids: set[int] = set()
    total, done = scan.total, 0
    predictor.warmup()  # the reported speed is steady-state, as in `dfseg bench`
    tracking = _TrackingSetup(predictor, options) if options.track else None
    writer = WriteBehind(depth=2)
    try:
        for source in scan.sources:
            video = _video_info(source)
            result.videos += video is not None
            tracker = tracking.tracker(source) if tracking is not None else None
            with ReadAhead(source.frames(), depth=2 * options.batch + 2) as frames:
                for batch in _batches(iter(frames), options.batch):
                    found = _predict_batch(predictor, batch, result)
                    if tracker is not None:
                        found = [
                            _track(tracker, d, track_ids) if d is not None else None for d in found
                        ]
                    _count(found, video, result, counts)
                    writer.submit(partial(_write_batch, sinks, batch, found, video))
                    done += len(batch)
                    elapsed = max(time.perf_counter() - started, 1e-9)
                    info: dict[str, float | str] = {
                        "det": result.detections,
                        "fps": round(done / elapsed, 1),
                    }
                    report(progress, ProgressEvent("infer", done, total, info))
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        try:
            writer.close()
        finally:
            for sink in sinks:
                sink.close()
            if tracking is not None:
                tracking.restore()
    result.per_class = dict(counts.most_common())
    result.tracks = len(track_ids)
    result.timing_ms = {k: round(v, 2) for k, v in predictor.times.per_image_ms().items()}
    result.seconds = round(time.perf_counter() - started, 2)
    predicted = result.images + result.frames
    result.frames_per_second = round(predicted / max(result.seconds, 1e-9), 2)
    return result


class _TrackingSetup:
    """The predictor keeps detections down to the tracker's low threshold while tracking (the
    second association needs them); the tracker's high threshold defaults to the threshold
    the predictor had. `restore()` puts the predictor's settings back."""

    def __init__(self, predictor: Predictor, options: InferOptions) -> None:
        config = TrackerConfig(**options.tracker)
        self.predictor, self.deployed = predictor, predictor.settings
        self.name = config.name
        high = self.deployed.conf if config.high_thresh is None else config.high_thresh
        low = min(config.low_thresh, high)
        new = high if config.new_track_thresh is None else config.new_track_thresh
        self.settings = {
            "high_thresh": high,
            "low_thresh": low,
            "new_track_thresh": new,
            "match_thresh": config.match_thresh,
            "track_buffer": config.track_buffer,
        }
        class_conf = {k: min(v, low) for k, v in self.deployed.class_conf.items()}
        predictor.settings = dataclasses.replace(self.deployed, conf=low, class_conf=class_conf)

    def tracker(self, source: Source) -> Tracker:
        """A fresh tracker for one video or image sequence."""
        rate = source.output_fps if isinstance(source, VideoStream) else 30.0
        return build_tracker(self.name, self.settings, frame_rate=rate)

    def restore(self) -> None:
        self.predictor.settings = self.deployed


def _track(tracker: Tracker, detections: Detections, seen: set[int]) -> Detections:
    """The detections with their track ids (-1 where untracked), so the MOT det file can list
    every candidate; `seen` collects the ids."""
    ids = tracker.update(detections.boxes_xyxy, detections.scores, detections.labels)
    detections.track_ids = ids
    seen.update(int(i) for i in ids if i >= 0)
    return detections


def _video_info(source: Source) -> VideoInfo | None:
    if isinstance(source, VideoStream):
        return VideoInfo(source.label, source.stem, source.output_fps, source.size_wh)
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


def _refuse_detection_outputs(options: InferOptions) -> None:
    """Semantic models write class maps: the per-object outputs have nothing to write."""
    asked = [
        flag
        for flag, on in (
            ("--save-txt", options.save_txt),
            ("--save-crops", options.save_crops),
            ("--track", options.track),
            ("--tile", bool(options.tile.get("size"))),
        )
        if on
    ]
    if asked:
        raise BackendError(
            f"{', '.join(asked)}: per-object outputs, but this is a semantic model (a class per "
            "pixel); it writes colour overlays, index masks (masks/*.png) and predictions.jsonl"
        )


def _predict_batch(
    predictor: Predictor, batch: list[Frame], result: InferReport
) -> list[Detections | None]:
    """Detections of each frame of `batch` (None for an unreadable frame, noted in `result`)."""
    readable = [frame for frame in batch if frame.image is not None]
    detections = predictor.predict_arrays([f.image for f in readable]) if readable else []  # type: ignore[misc]
    found = dict(zip((id(f) for f in readable), detections, strict=True))
    answers: list[Detections | None] = []
    for frame in batch:
        if frame.image is None:
            result.unreadable.append(frame.error or frame.path)
            answers.append(None)
            continue
        answers.append(found[id(frame)])
    return answers


def _count(
    found: list[Detections | None],
    video: VideoInfo | None,
    result: InferReport,
    counts: Counter[str],
) -> None:
    """Add a batch's frames and (shown) detections to the report."""
    for detections in found:
        if detections is None:
            continue
        if video is None:
            result.images += 1
        else:
            result.frames += 1
        if detections.class_map is not None:  # semantic: frames showing each class
            counts.update(detections.class_pixels().keys())
            continue
        shown = detections.track_ids >= 0 if detections.track_ids is not None else slice(None)
        names = np.asarray(detections.names, dtype=object)[shown]
        result.detections += len(names)
        counts.update(str(name) for name in names)


def _write_batch(
    sinks: list[Sink],
    batch: list[Frame],
    found: list[Detections | None],
    video: VideoInfo | None,
) -> None:
    """Hand each frame to every sink (in the writer thread): tracked detections only, and for
    the MOT det file every candidate."""
    for frame, detections in zip(batch, found, strict=True):
        if detections is None:
            for sink in sinks:
                sink.write_unreadable(frame)
            continue
        shown = detections
        if detections.track_ids is not None:
            shown = detections.select(detections.track_ids >= 0)
        for sink in sinks:
            if isinstance(sink, MotChallenge):
                sink.write_candidates(frame, detections, video)
            sink.write(frame, shown, video)


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
    batch = max(options.batch, options.streams or 1)  # a batch fills the streams
    predictor = load_predictor(
        artifact,
        backend=backend,
        device=options.device,
        conf=options.conf,
        class_conf=options.class_conf,
        threads=options.threads,
        precision=options.precision,
        rect=options.rect,
        max_det=options.max_det,
        batch_size=batch,
        tiling=tile_settings(options.tile, batch),
        streams=options.streams,
    )
    if task_spec(predictor.task).semantic:
        _refuse_detection_outputs(options)  # before any folder is made
    scan = open_sources(source, stride=options.stride, max_fps=options.max_fps)
    run = RunFolder.containing(artifact)
    out_dir = create_numbered_dir(run.path if run is not None else artifact.parent, INFER_STEM)
    return infer(predictor, scan, out_dir, options, progress)
