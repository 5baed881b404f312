"""`dfseg infer`: predict images, folders, globs, videos or a webcam with a trained or exported
model; annotated images/videos, YOLO txt, crops and a JSONL go to a new `infer` folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from dfseg.cli import render
from dfseg.cli.common import JSON_OPT, OVERRIDES_ARG, load
from dfseg.errors import DfsegError

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
    backend: str | None = typer.Option(
        None, "--backend", help="auto, torch, onnxruntime, openvino or tensorrt."
    ),
    conf: float | None = typer.Option(
        None, "--conf", min=0.0, max=1.0, help="Score threshold (default: the tuned one)."
    ),
    batch: int | None = typer.Option(None, "--batch", min=1, help="Frames per model call."),
    rect: bool | None = typer.Option(
        None, "--rect/--no-rect", help="Letterbox models: pad only to a multiple of 32."
    ),
    save_txt: bool | None = typer.Option(None, "--save-txt", help="YOLO txt labels."),
    save_conf: bool | None = typer.Option(None, "--save-conf", help="Append scores to txt rows."),
    save_crops: bool | None = typer.Option(None, "--save-crops", help="One image per detection."),
    crop_padding: int | None = typer.Option(None, "--crop-padding", min=0, help="Crop margin px."),
    no_save_images: bool = typer.Option(
        False, "--no-save-images", help="Do not write annotated images and videos."
    ),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, or an OpenVINO device."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="CPU inference threads."),
    precision: str | None = typer.Option(
        None, "--precision", help="OpenVINO compute precision: fp32, bf16, fp16 or default."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Predict with a trained or exported model. Results go to <run>/infer, infer-2, ..."""
    from dfseg.runtime.infer import run_infer

    section, runs_root = _infer_section(target, overrides or [])
    flags = {
        "backend": backend, "conf": conf, "batch": batch, "rect": rect, "save_txt": save_txt,
        "save_conf": save_conf, "save_crops": save_crops, "crop_padding": crop_padding,
    }  # fmt: skip
    settings = {**section, **{k: v for k, v in flags.items() if v is not None}}
    if no_save_images:
        settings["save_images"] = False
    options = _options(settings, device, threads, precision)
    with render.ProgressRenderer() as progress:
        report = run_infer(target, source, options, runs_root, None if as_json else progress)
    if as_json:
        render.dump_json(report)
        return
    _render(report)


def _infer_section(target: Path, overrides: list[str]) -> tuple[dict[str, Any], Path | None]:
    """The `infer:` settings (project file, else the run's project.yaml, else defaults) and the
    project's runs root (project files only)."""
    from dfseg.config.deploy import InferConfig
    from dfseg.runtime.artifacts import PROJECT_SUFFIXES, run_dir_of

    if target.suffix.lower() in PROJECT_SUFFIXES:
        config = load(target, overrides)
        return config.infer.model_dump(), config.output_root
    run = run_dir_of(target) if target.exists() else None
    if run is not None and (run / "project.yaml").is_file():
        return load(run / "project.yaml", overrides).infer.model_dump(), None
    if overrides:
        raise DfsegError(f"{target}: key=value overrides need a project file (none found)")
    return InferConfig().model_dump(), None


def _options(
    settings: dict[str, Any], device: str | None, threads: int | None, precision: str | None
) -> Any:
    from dfseg.runtime.infer import InferOptions

    names = set(InferOptions.__dataclass_fields__)
    values = {key: value for key, value in settings.items() if key in names}
    return InferOptions(**values, device=device, threads=threads, precision=precision)


def _render(report: Any) -> None:
    out = render.console()
    what = [f"{report.images} images"] if report.images else []
    if report.videos:
        what.append(f"{report.videos} videos ({report.frames} frames)")
    if report.unreadable:
        what.append(f"{len(report.unreadable)} unreadable (skipped)")
    out.print(f"{', '.join(what) or 'nothing'}: {report.detections} detections ({report.backend})")
    if report.per_class:
        rows = [(name, count) for name, count in report.per_class.items()]
        out.print(render.table(None, ["Class", "Detections"], rows))
    for line in report.unreadable[:10]:
        render.warn(f"skipped {line}")
    timing = report.timing_ms
    if timing:
        out.print(
            f"Speed: {timing['preprocess']:.1f} ms preprocess, {timing['inference']:.1f} ms "
            f"inference, {timing['postprocess']:.1f} ms postprocess per image"
        )
    out.print(f"Results saved to [bold]{report.out_dir}[/]")
