"""`dfseg demo`: the whole workflow on generated data, end to end.

generate -> check -> split -> train -> export (ONNX, OpenVINO) -> quantize (INT8) -> bench ->
infer. Each stage runs the real command (the same code, progress and tables as typing it) and
shows the command line that would run it by hand, so the demo doubles as a tour of the CLI.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import typer

from dfseg.cli import bench as bench_cmd
from dfseg.cli import export as export_cmd
from dfseg.cli import infer as infer_cmd
from dfseg.cli import quantize as quantize_cmd
from dfseg.cli import render
from dfseg.cli import train as train_cmd
from dfseg.config import ProjectConfig, load_project
from dfseg.config.template import render_project_template
from dfseg.errors import DfsegError

DEMO_CLASSES = ["circle", "square", "triangle", "star"]
UNSEEN_IMAGES = 8
Stage = Literal["check", "split", "train", "export", "quantize", "bench", "infer"]
# A small model learning from scratch on a few hundred images: a higher lr than the D-FINE
# fine-tuning default and no mosaic make a few epochs enough to see boxes and masks.
DEMO_TRAIN = ["train.lr=0.002", "train.backbone_lr=0.002", "augment.mosaic=0"]


def demo(
    out: Path = typer.Option(Path("dfseg-demo"), "--out", "-o", help="Folder for everything."),
    task: Literal["detect", "segment"] = typer.Option("segment", help="detect or segment."),
    images: int = typer.Option(240, min=20, help="Number of generated images."),
    image_size: int = typer.Option(256, help="Generated image and network input size."),
    epochs: int = typer.Option(12, min=1, help="Training epochs."),
    force: bool = typer.Option(False, "--force", help="Run again in an existing demo folder."),
    until: Stage = typer.Option("infer", help="Stop after this stage (split: just the data)."),
) -> None:
    """Run the whole workflow on a generated dataset (the README's first command): generate,
    check, split, train a D-FINE-N, export ONNX and OpenVINO, quantize to INT8, bench every
    format and predict on unseen images. About 10 minutes on 2 CPU cores."""
    started = time.monotonic()
    project_file = _prepare(out, task, images, image_size, force)
    config = load_project(project_file)
    results: dict[str, object] = {}
    for name, command, action in _stages(project_file, config, epochs, image_size):
        _stage(name, command)
        results[name] = action()
        if name == until:
            break
    _finish(config, started, results)


def _stages(
    project_file: Path, config: ProjectConfig, epochs: int, image_size: int
) -> list[tuple[str, str, Callable[[], object]]]:
    """(name, the command line a user would type, what runs) for each stage after generate."""
    overrides = [f"train.epochs={epochs}", *DEMO_TRAIN]
    unseen = project_file.parent / "unseen"
    return [
        ("check", f"dfseg check {project_file}", lambda: _check(config)),
        ("split", f"dfseg split {project_file}", lambda: _split(config)),
        (
            "train",
            f"dfseg train {project_file} {' '.join(overrides)}",
            lambda: train_cmd.train(
                project_file, overrides, resume=False, devices=1, as_json=False
            ),
        ),
        (
            "export",
            f"dfseg export {project_file} --fmt onnx,openvino",
            lambda: export_cmd.export(
                project_file, [], fmt=["onnx", "openvino"], half=None, batch=None,
                dynamic_batch=None, dynamic_size=None, image_size=None, opset=None, force=False,
                threads=None, as_json=False,
            ),
        ),
        (
            "quantize",
            f"dfseg quantize {project_file} --mode basic",
            lambda: quantize_cmd.quantize(
                project_file, [], mode="basic", max_drop=None, metric=None,
                calibration_images=None, preset=None, int8_precision="fp32", force=False,
                threads=None, as_json=False,
            ),
        ),
        (
            "bench",
            f"dfseg bench {project_file}",
            lambda: bench_cmd.bench(
                project_file, [], max_drop=None, metric="map50_95", device=["cpu"], as_json=False
            ),
        ),
        (
            "infer",
            f"dfseg infer {project_file} {unseen / 'images'} --backend openvino",
            lambda: infer_cmd.infer(
                project_file, str(_unseen_images(unseen, image_size)), [], backend="openvino",
                conf=None, batch=None, rect=None, save_txt=None, save_conf=None, save_crops=None,
                crop_padding=None, no_save_images=False, device=None, threads=None,
                precision=None, as_json=False,
            ),
        ),
    ]  # fmt: skip


def _stage(name: str, command: str | None = None) -> None:
    out = render.console()
    out.rule(f"[bold]{name}")
    if command is not None:
        out.print(f"[dim]$ {command}[/]", highlight=False)


def _prepare(out: Path, task: str, images: int, image_size: int, force: bool) -> Path:
    from dfseg.data.synthetic import generate_synthetic_dataset

    if image_size % 32 or image_size < 256:
        raise DfsegError(
            f"--image-size must be a multiple of 32 and >= 256 (got {image_size}): D-FINE's "
            "300 queries need at least that many anchors"
        )
    project_file = out / "project.yaml"
    if project_file.exists() and not force:
        raise DfsegError(f"{project_file} exists; pass --force to run the demo again there")
    _stage("generate")
    with render.ProgressRenderer() as progress:
        generate_synthetic_dataset(
            out / "data",
            num_images=images,
            image_size=(image_size, image_size),
            classes=DEMO_CLASSES,
            seed=0,
            overwrite=force,
            progress=progress,
        )
    text = render_project_template(
        name="shapes",
        task=task,
        size="n",
        data_path="data",
        classes=DEMO_CLASSES,
        image_size=(image_size, image_size),
    )
    project_file.write_text(text, encoding="utf-8")
    render.info(f"wrote {images} images to {out / 'data'} and {project_file}")
    return project_file


def _check(config: ProjectConfig) -> None:
    from dfseg.data.check import check_dataset

    report = check_dataset(config.data.path, config.data.format, config.class_names)
    render.console().print(report.summary())
    if not report.ok:
        raise DfsegError("the generated dataset failed its check; this is a bug, please report it")


def _split(config: ProjectConfig) -> None:
    from dfseg.data.reading import read_dataset
    from dfseg.data.split import split_dataset

    dataset = read_dataset(config.data.path, config.data.format, config.class_names)
    ratios = config.data.split
    report = split_dataset(
        dataset,
        config.split_dir,
        ratios=(ratios.train, ratios.val, ratios.test),
        seed=ratios.seed,
        overwrite=True,
    )
    render.console().print(
        "split: " + ", ".join(f"{name} {count}" for name, count in report.counts.items())
    )


def _unseen_images(folder: Path, image_size: int) -> Path:
    """A few images drawn with another seed: new to the model, for `dfseg infer`."""
    from dfseg.data.synthetic import generate_synthetic_dataset

    generate_synthetic_dataset(
        folder,
        num_images=UNSEEN_IMAGES,
        image_size=(image_size, image_size),
        classes=DEMO_CLASSES,
        seed=1,
        overwrite=True,
    )
    return folder / "images"


def _finish(config: ProjectConfig, started: float, results: dict[str, object]) -> None:
    """The bench table again (when bench ran), then the folders the demo wrote."""
    from dfseg.analysis.bench_report import BenchReport
    from dfseg.training.run_dir import latest_run_dir

    run = latest_run_dir(config.output_root) if "train" in results else None
    out = render.console()
    out.rule("[bold green]demo finished")
    bench = results.get("bench")
    if isinstance(bench, BenchReport):
        bench_cmd.render_report(bench)
    if run is not None:
        rows = [[str(path)] for path in sorted(run.iterdir()) if path.is_dir()]
        exports = run / "export"
        if exports.is_dir():
            rows += [[str(path)] for path in sorted(exports.iterdir()) if path.is_dir()]
        out.print(render.table(f"outputs of {run}", ["Folder"], rows))
    out.print(f"project file: {config.source}")
    out.print(f"{(time.monotonic() - started) / 60:.1f} min in all.")
