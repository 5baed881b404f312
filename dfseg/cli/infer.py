"""`dfseg infer`: predict images, folders, globs, videos or a webcam with a trained or exported
model; annotated images/videos, YOLO txt, crops and a JSONL go to a new `infer` folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from dfseg.cli import render
from dfseg.cli.common import JSON_OPT, OVERRIDES_ARG, cpu_threads, flag, show
from dfseg.config.choices import Backend, TileMerge

if TYPE_CHECKING:
    from dfseg.runtime.infer import InferReport

TARGET_ARG = typer.Argument(
    ...,
    help="A project file (its newest run), a run folder, an export folder or a model file "
    "(.pt, .onnx, .xml, .engine).",
    show_default=False,
    metavar="PROJECT.yaml|RUN|ARTIFACT",
)
SOURCE_ARG = typer.Argument(
    ...,
    help="An image, a folder, a glob ('imgs/*.jpg'), a video, a folder of videos or a webcam "
    "index.",
    show_default=False,
    metavar="SOURCE",
)


def infer(
    target: Path = TARGET_ARG,
    source: str = SOURCE_ARG,
    overrides: list[str] | None = OVERRIDES_ARG,
    backend: Backend | None = typer.Option(
        None, "--backend", help="Backend (default: the project's infer.backend, else auto)."
    ),
    conf: float | None = typer.Option(
        None, "--conf", min=0.0, max=1.0, help="Score threshold (default: the tuned one)."
    ),
    batch: int | None = typer.Option(None, "--batch", min=1, help="Frames per model call."),
    streams: int | None = typer.Option(
        None,
        "--streams",
        min=1,
        help="OpenVINO throughput mode: N parallel streams (images/s over latency).",
    ),
    rect: bool | None = flag(
        None, "--rect/--no-rect", help="Letterbox models: pad only to a multiple of 32."
    ),
    save_txt: bool | None = flag(None, "--save-txt", help="YOLO txt labels."),
    save_conf: bool | None = flag(None, "--save-conf", help="Append scores to txt rows."),
    save_crops: bool | None = flag(None, "--save-crops", help="One image per detection."),
    crop_padding: int | None = typer.Option(None, "--crop-padding", min=0, help="Crop margin px."),
    no_save_images: bool = flag(
        False, "--no-save-images", help="Do not write annotated images and videos."
    ),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, or an OpenVINO device."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="CPU inference threads."),
    precision: str | None = typer.Option(
        None, "--precision", help="OpenVINO compute precision: fp32, bf16, fp16 or default."
    ),
    track: bool | None = flag(
        None,
        "--track/--no-track",
        help="Track objects over frames (ByteTrack): ids in every "
        "output, MOTChallenge files in mot/.",
    ),
    stride: int | None = typer.Option(None, "--stride", min=1, help="Every Nth video frame."),
    max_fps: float | None = typer.Option(
        None,
        "--max-fps",
        min=0.01,
        help="At most this many video frames per second (live sources drop the frames in between).",
    ),
    tile: int | None = typer.Option(
        None, "--tile", min=32, help="Tiled inference: tile side in original pixels."
    ),
    tile_overlap: float | None = typer.Option(
        None, "--tile-overlap", min=0.0, max=0.95, help="Overlap of neighbouring tiles."
    ),
    tile_merge: TileMerge | None = typer.Option(
        None, "--tile-merge", help="fuse (stitch an object's parts, default) or nms."
    ),
    tile_whole: bool | None = flag(
        None, "--tile-whole/--no-tile-whole", help="Also predict the whole image downscaled."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Predict with a trained or exported model. Results go to <run>/infer, infer-2, ..."""
    from dfseg.structures.run_layout import resolve_target

    project = resolve_target(target, overrides or []).project()  # before heavy imports

    from dfseg.runtime.infer import infer_options, run_infer

    threads = cpu_threads(threads, "infer", device)
    options = infer_options(
        project, backend=backend, conf=conf, batch=batch, streams=streams, rect=rect,
        save_txt=save_txt, save_conf=save_conf, save_crops=save_crops,
        crop_padding=crop_padding, save_images=False if no_save_images else None, device=device,
        threads=threads, precision=precision, track=track, stride=stride, max_fps=max_fps,
        tile_size=tile, tile_overlap=tile_overlap, tile_merge=tile_merge,
        tile_whole_image=tile_whole,
    )  # fmt: skip
    with render.ProgressRenderer() as progress:
        report = run_infer(target, source, options, None if as_json else progress)
    show(report, as_json, render_report)
    if report.interrupted:
        raise typer.Exit(130)  # the shell's code for Ctrl-C, after the outputs were closed


def render_report(report: InferReport) -> None:
    """What was predicted, per class, the speed per stage and where the results are."""
    out = render.console()
    what = [f"{report.images} images"] if report.images else []
    if report.videos:
        what.append(f"{report.videos} videos ({report.frames} frames)")
    if report.unreadable:
        what.append(f"{len(report.unreadable)} unreadable (skipped)")
    tracks = f", {report.tracks} tracks" if report.tracks else ""
    semantic = report.task == "semantic"
    found = "a class per pixel" if semantic else f"{report.detections} detections{tracks}"
    out.print(f"{', '.join(what) or 'nothing'}: {found} ({report.backend})")
    if report.per_class:
        rows = [(name, count) for name, count in report.per_class.items()]
        counted = "Images showing it" if semantic else "Detections"
        out.print(render.table(None, ["Class", counted], rows))
    for line in report.unreadable[:10]:
        render.warn(f"skipped {line}")
    timing = report.timing_ms
    if timing:
        out.print(
            f"Speed: {timing['preprocess']:.1f} ms preprocess, {timing['inference']:.1f} ms "
            f"inference, {timing['postprocess']:.1f} ms postprocess per image"
        )
    out.print(f"{report.frames_per_second:.1f} frames/s end to end ({report.seconds:.1f} s)")
    if report.interrupted:
        render.warn("stopped by Ctrl-C: the outputs so far are written and closed")
    out.print(f"Results saved to [bold]{report.out_dir}[/]")
