"""What a run folder holds for someone looking at it: its models (with their bench status), its
curves and plots, its newest bench table and its newest error gallery. `dfseg app` shows it."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from dfseg.analysis.bench.run import BENCH_CSV
from dfseg.analysis.errors.analyze import GALLERY_DIR
from dfseg.runtime.artifacts import FORMAT_SUFFIXES, model_file_in
from dfseg.runtime.errors import ArtifactError
from dfseg.structures.manifest import MANIFEST_FILE, ArtifactManifest, ManifestError
from dfseg.structures.run_layout import RunFolder, resolve_target

# The plots training writes into the run folder, in the order they are worth looking at.
RUN_PLOTS = (
    "PR_curve.png", "F1_curve.png", "P_curve.png", "R_curve.png",
    "confusion_matrix_normalized.png", "confusion_matrix.png", "labels.png",
    "val_predictions.png",
)  # fmt: skip


@dataclass(frozen=True)
class ArtifactEntry:
    """One model of a run: its file, what it is, and how its newest bench judged it.

    Attributes:
        label: "best.pt (torch)" or "<export folder> (<format> <precision>)" with the bench
            status appended when the run was benched.
        path: the model file.
        bench_status: "passed", "validation_failed", ... (None: not in the newest bench).
    """

    label: str
    path: Path
    bench_status: str | None = None


@dataclass
class RunContents:
    """The viewable contents of a run (empty fields where the run has no such thing).

    Attributes:
        run: the run folder (None for a loose model file).
        artifacts: best.pt first, then every export, newest bench status attached.
        results_csv: per-epoch metrics of training.
        plots: training plots present, see `RUN_PLOTS`.
        bench_rows: rows of the newest bench.csv (column -> text).
        error_gallery: error type -> pictures of the newest `dfseg errors` gallery.
    """

    run: Path | None
    artifacts: list[ArtifactEntry]
    results_csv: Path | None = None
    plots: list[Path] = field(default_factory=list)
    bench_rows: list[dict[str, str]] = field(default_factory=list)
    error_gallery: dict[str, list[Path]] = field(default_factory=dict)


def describe_run(target: Path | str) -> RunContents:
    """The contents of the run `target` designates: a run folder, a project file (its newest
    run), an export folder or a model file (that model alone, plus its run's files if it lies
    in one).

    Raises:
        RunNotFoundError / ArtifactError: nothing usable there.
    """
    resolved = resolve_target(target)
    run = resolved.run
    if resolved.file is not None:
        file = model_file_in(resolved.file) if resolved.file.is_dir() else resolved.file
        models = [file]
    else:
        assert run is not None  # a project or a run folder gives a run
        models = [run.best, *_export_models(run)]
    bench_rows = _newest_bench_rows(run.path) if run is not None else []
    status = {_key(row.get("artifact", "")): row.get("status", "") for row in bench_rows}
    artifacts = [_entry(model, status.get(_key(str(model)))) for model in models]
    if run is None:
        return RunContents(run=None, artifacts=artifacts)
    plots = [run.path / name for name in RUN_PLOTS if (run.path / name).is_file()]
    return RunContents(
        run=run.path, artifacts=artifacts,
        results_csv=run.results if run.results.is_file() else None, plots=plots,
        bench_rows=bench_rows, error_gallery=_newest_gallery(run.path),
    )  # fmt: skip


def _export_models(run: RunFolder) -> list[Path]:
    models = []
    for folder in run.export_folders():
        try:
            models.append(model_file_in(folder))
        except (ManifestError, ArtifactError):  # a half-written export: not offered
            continue
    return models


def _entry(model: Path, bench_status: str | None) -> ArtifactEntry:
    try:
        manifest = ArtifactManifest.read(model.parent / MANIFEST_FILE)
        kind = f"{manifest.format} {manifest.precision}"
    except ManifestError:
        kind = "torch" if model.suffix == FORMAT_SUFFIXES["checkpoint"] else model.suffix[1:]
    name = model.name if model.suffix == ".pt" else model.parent.name
    label = f"{name} ({kind})" + (f" - bench: {bench_status}" if bench_status else "")
    return ArtifactEntry(label=label, path=model, bench_status=bench_status)


def _key(path: str) -> str:
    return str(Path(path).resolve()) if path else ""


def _newest(run: Path, stem: str, inside: str) -> Path | None:
    """The newest `<stem>`, `<stem>-N` folder of the run that holds `inside`."""
    found = [p for p in run.glob(f"{stem}*") if p.is_dir() and (p / inside).exists()]
    return max(found, key=lambda p: (p / inside).stat().st_mtime) if found else None


def _newest_bench_rows(run: Path) -> list[dict[str, str]]:
    folder = _newest(run, "bench", BENCH_CSV)
    if folder is None:
        return []
    with (folder / BENCH_CSV).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _newest_gallery(run: Path) -> dict[str, list[Path]]:
    folder = _newest(run, "errors", GALLERY_DIR)
    if folder is None:
        return {}
    gallery = folder / GALLERY_DIR
    return {
        kind.name: sorted(kind.glob("*.jpg"))
        for kind in sorted(gallery.iterdir())
        if kind.is_dir() and any(kind.glob("*.jpg"))
    }
