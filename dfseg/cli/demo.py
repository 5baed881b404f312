"""`dfseg demo`: the whole workflow on generated data, end to end.

generate -> check -> split -> train -> export (ONNX, OpenVINO) -> quantize (INT8) -> bench ->
infer. Each stage calls the library function its command calls, renders the same tables, and
shows the command line that would run it by hand, so the demo doubles as a tour of the CLI. A
gate that a stage reports (an INT8 accuracy drop beyond the allowed one, a bench row marked
validation_failed) is shown and the tour goes on: the demo exits 0 whatever the machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer

from dfseg.cli import render
from dfseg.cli.common import cpu_threads, flag
from dfseg.errors import DfsegError

if TYPE_CHECKING:
    from dfseg.analysis.bench import BenchReport
    from dfseg.config import ProjectConfig
    from dfseg.structures.run_layout import RunFolder

DEMO_CLASSES = ["circle", "square", "triangle", "star"]
UNSEEN_IMAGES = 8
Stage = Literal["check", "split", "train", "export", "quantize", "bench", "infer"]


def demo(
    out: Path = typer.Option(Path("dfseg-demo"), "--out", "-o", help="Folder for everything."),
    task: Literal["detect", "segment"] = typer.Option("segment", help="detect or segment."),
    images: int = typer.Option(240, min=20, help="Number of generated images."),
    image_size: int = typer.Option(256, help="Generated image and network input size."),
    epochs: int = typer.Option(12, min=1, help="Training epochs."),
    force: bool = flag(False, "--force", help="Run again in an existing demo folder."),
    until: Stage = typer.Option("infer", help="Stop after this stage (split: just the data)."),
) -> None:
    """Run the whole workflow on a generated dataset (the README's first command): generate,
    check, split, train a D-FINE-N, export ONNX and OpenVINO, quantize to INT8, bench every
    format and predict on unseen images. About 10 minutes on 2 CPU cores."""
    started = time.monotonic()
    project_file = _prepare(out, task, images, image_size, force)
    tour = _Tour(project_file, epochs, image_size)
    for name, command, action in tour.stages():
        _stage(name, command)
        action()
        if name == until:
            break
    tour.finish(started)


class _Tour:
    """The stages, run one after the other on the demo's project (each is what its command
    runs, with the same rendering)."""

    def __init__(self, project_file: Path, epochs: int, image_size: int) -> None:
        from dfseg.config import load_project

        self.project_file = project_file
        self.overrides = [f"train.epochs={epochs}"]  # the project defaults, nothing hidden
        self.config = load_project(project_file, self.overrides)
        self.unseen = project_file.parent / "unseen"
        self.image_size = image_size
        self.run: RunFolder | None = None
        self.bench: BenchReport | None = None
        self.gates: list[str] = []
        self.threads = cpu_threads(None, "demo inference")

    def stages(self) -> list[tuple[str, str, Callable[[], None]]]:
        """(name, the command line a user would type, what runs) for each stage after generate."""
        file = self.project_file
        unseen = self.unseen / "images"
        return [
            ("check", f"dfseg check {file}", self.check),
            ("split", f"dfseg split {file}", self.split),
            ("train", f"dfseg train {file} {' '.join(self.overrides)}", self.train),
            ("export", f"dfseg export {file} --fmt onnx,openvino", self.export),
            ("quantize", f"dfseg quantize {file} --mode basic", self.quantize),
            ("bench", f"dfseg bench {file}", self.bench_all),
            ("infer", f"dfseg infer {file} {unseen} --backend openvino", self.infer),
        ]

    def check(self) -> None:
        from dfseg.data.check import check_read
        from dfseg.data.project_dataset import read_project_dataset

        report = check_read(
            read_project_dataset(self.config.data, task=self.config.project.task).result
        )
        render.console().print(report.summary())
        if not report.ok:
            raise DfsegError("the generated dataset failed its check; this is a bug, report it")

    def split(self) -> None:
        from dfseg.data.project_dataset import make_split, read_project_dataset

        config = self.config
        dataset = read_project_dataset(config.data, task=config.project.task)
        report = make_split(dataset, config.data.split, config.split_dir, overwrite=True)
        render.console().print(
            "split: " + ", ".join(f"{name} {count}" for name, count in report.counts.items())
        )

    def train(self) -> None:
        from dfseg.cli.epoch_printer import EpochPrinter
        from dfseg.cli.train import render_summary
        from dfseg.structures.run_layout import RunFolder
        from dfseg.training.api import train_project

        with render.ProgressRenderer() as progress:
            report = train_project(self.config, progress=progress, hooks=[EpochPrinter(progress)])
        assert report is not None  # one process: the main rank
        render_summary(report)
        self.run = RunFolder(Path(report.run_dir))

    def export(self) -> None:
        from dfseg.cli.export import render_report
        from dfseg.export.api import export_model
        from dfseg.export.options import options_from_config
        from dfseg.export.source import find_export_source

        source = find_export_source(self._run_path())
        options = options_from_config(
            source.project.export if source.project else None, formats=["onnx", "openvino"],
            threads=self.threads,
        )  # fmt: skip
        with render.ProgressRenderer() as progress:
            report = export_model(source, options, progress)
        render_report(report)
        if not report.passed:
            self._gate("export: " + "; ".join(report.failures()))

    def quantize(self) -> None:
        from dfseg.analysis.quantize import quantize_options, quantize_run
        from dfseg.cli.quantize import render_report

        run, project = self._run_and_project()
        options = quantize_options(project.export.quantize, mode="basic", threads=self.threads)
        with render.ProgressRenderer() as progress:
            report = quantize_run(run, project, options, progress)
        render_report(report)
        if not report.passed:
            self._gate(f"quantize: {report.verdict}; bench marks the INT8 artifact")

    def bench_all(self) -> None:
        from dfseg.analysis.bench import bench_run, bench_settings
        from dfseg.cli.bench import render_report

        run, project = self._run_and_project()
        settings = bench_settings(
            project.bench, metric="map50_95", devices=["cpu"], threads=self.threads
        )
        with render.ProgressRenderer() as progress:
            self.bench = bench_run(run, project, settings, progress)
        render_report(self.bench)
        failed = [row.name for row in self.bench.rows if row.status != "ok"]
        if failed:
            self._gate(f"bench: {', '.join(failed)} not ok (see the table)")

    def infer(self) -> None:
        from dfseg.cli.infer import render_report
        from dfseg.runtime.infer import infer_options, run_infer

        images = _unseen_images(self.unseen, self.image_size)
        project = self._run_and_project()[1]
        options = infer_options(project, backend="openvino", threads=self.threads)
        with render.ProgressRenderer() as progress:
            report = run_infer(self._run_path(), images, options, progress)
        render_report(report)

    def _run_path(self) -> Path:
        if self.run is None:
            raise DfsegError("the demo's train stage did not run")
        return self.run.path

    def _run_and_project(self) -> tuple[RunFolder, ProjectConfig]:
        from dfseg.structures.run_layout import resolve_target

        return resolve_target(self._run_path()).require_run()

    def _gate(self, message: str) -> None:
        """A check a stage reports: shown now and in the summary; the tour goes on."""
        self.gates.append(message)
        render.warn(f"{message} (the demo goes on)")

    def finish(self, started: float) -> None:
        """The bench table again (when bench ran), the gates that failed, the folders."""
        out = render.console()
        out.rule("[bold green]demo finished")
        if self.bench is not None:
            from dfseg.cli.bench import render_report

            render_report(self.bench)
        for gate in self.gates:
            render.warn(gate)
        if self.run is not None:
            run = self.run.path
            rows = [[str(path)] for path in sorted(run.iterdir()) if path.is_dir()]
            rows += [[str(path)] for path in self.run.export_folders()]
            out.print(render.table(f"outputs of {run}", ["Folder"], rows))
        out.print(f"project file: {self.project_file}")
        out.print(f"{(time.monotonic() - started) / 60:.1f} min in all.")


def _stage(name: str, command: str | None = None) -> None:
    out = render.console()
    out.rule(f"[bold]{name}")
    if command is not None:
        out.print(f"[dim]$ {command}[/]", highlight=False)


def _prepare(out: Path, task: str, images: int, image_size: int, force: bool) -> Path:
    from dfseg.config.template import render_project_template
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
