"""Finding the model artifact a command means: a model file, an export folder, a run folder (its
best.pt or newest export), or the newest run under a project's output root."""

from __future__ import annotations

from pathlib import Path

from dfseg.runtime.errors import ArtifactError
from dfseg.structures.manifest import MANIFEST_FILE, ArtifactManifest, ManifestError
from dfseg.structures.run_folders import RUN_STEM, latest_numbered_dir

BEST_CHECKPOINT = "best.pt"
EXPORT_DIR = "export"
PROJECT_SUFFIXES = (".yaml", ".yml")
# File type -> the backend that runs it by default.
SUFFIX_BACKENDS = {
    ".pt": "torch",
    ".pth": "torch",
    ".onnx": "onnxruntime",
    ".xml": "openvino",
    ".engine": "tensorrt",
    ".plan": "tensorrt",
}
# Backend -> the artifact formats (manifest `format`) it can run.
BACKEND_FORMATS = {
    "torch": ("checkpoint",),
    "onnxruntime": ("onnx",),
    "openvino": ("openvino", "onnx"),
    "tensorrt": ("tensorrt",),
}
FORMAT_SUFFIXES = {
    "checkpoint": ".pt",
    "onnx": ".onnx",
    "openvino": ".xml",
    "tensorrt": ".engine",
}


def default_backend(path: Path) -> str:
    """The backend that runs a model file by default, from its suffix."""
    backend = SUFFIX_BACKENDS.get(path.suffix.lower())
    if backend is None:
        raise ArtifactError(
            f"{path}: unknown model file type {path.suffix!r}; expected one of "
            f"{sorted(SUFFIX_BACKENDS)} (a dfseg checkpoint or an export of `dfseg export`)"
        )
    return backend


def latest_run_dir(root: Path, stem: str = RUN_STEM) -> Path | None:
    """The run folder (`exp`, `exp-2`, ...) with the highest index holding a best.pt, or None."""
    return latest_numbered_dir(root, stem, BEST_CHECKPOINT)


def is_run_dir(path: Path) -> bool:
    """A training run folder: it holds a best.pt."""
    return (path / BEST_CHECKPOINT).is_file()


def run_dir_of(artifact: Path) -> Path | None:
    """The run folder an artifact belongs to (best.pt's folder, or `<run>/export/<name>/...`)."""
    for parent in [artifact, *artifact.parents][:4]:
        if parent.is_dir() and is_run_dir(parent):
            return parent
    return None


def model_file_in(folder: Path) -> Path:
    """The model file of an export folder (the one its manifest's format names)."""
    manifest = ArtifactManifest.read(folder / MANIFEST_FILE)
    suffix = FORMAT_SUFFIXES[manifest.format]
    candidates = sorted(folder.glob(f"*{suffix}"))
    if len(candidates) != 1:
        raise ArtifactError(
            f"{folder}: expected one {suffix} file beside {MANIFEST_FILE}, found "
            f"{[c.name for c in candidates]}"
        )
    return candidates[0]


def newest_export(run_dir: Path, backend: str) -> Path | None:
    """The model file of the newest export in `<run>/export` that `backend` can run, its own
    format first (an OpenVINO IR before an ONNX file for the openvino backend)."""
    formats = BACKEND_FORMATS.get(backend, ())
    found: list[tuple[int, float, Path]] = []
    export_root = run_dir / EXPORT_DIR
    if not export_root.is_dir():
        return None
    for manifest_path in export_root.glob(f"*/{MANIFEST_FILE}"):
        try:
            manifest = ArtifactManifest.read(manifest_path)
        except ManifestError:
            continue
        if manifest.format in formats:
            preference = -formats.index(manifest.format)
            found.append((preference, manifest_path.stat().st_mtime, manifest_path.parent))
    return model_file_in(max(found)[2]) if found else None


def resolve_artifact(
    target: Path, backend: str | None = None, runs_root: Path | None = None
) -> Path:
    """The model file `target` designates.

    Args:
        target: a model file (.pt, .onnx, .xml, .engine); an export folder (holding
            manifest.json); a run folder (its best.pt, or with a non-torch `backend` its newest
            export for that backend); a folder of runs (the newest run); or a project file,
            which needs `runs_root`.
        backend: the backend that will run it (None: chosen from the file type).
        runs_root: where a project's runs live (`ProjectConfig.output_root`), for project files.

    Raises:
        ArtifactError: nothing usable found (the message says what was looked for).
    """
    target = Path(target)
    if target.suffix.lower() in PROJECT_SUFFIXES:
        if runs_root is None:
            raise ArtifactError(f"{target}: a project file needs its output root to find runs")
        return _from_run(_newest_run(runs_root, f"project {target}"), backend)
    if target.is_file():
        default_backend(target)  # raises on an unknown file type
        return target
    if not target.exists():
        raise ArtifactError(f"{target}: no such file or folder")
    if (target / MANIFEST_FILE).is_file():
        return model_file_in(target)
    if is_run_dir(target):
        return _from_run(target, backend)
    return _from_run(_newest_run(target, str(target)), backend)


def _newest_run(root: Path, what: str) -> Path:
    run = latest_run_dir(root)
    if run is None:
        raise ArtifactError(
            f"{what}: no trained run (a folder {RUN_STEM}, {RUN_STEM}-2, ... with a "
            f"{BEST_CHECKPOINT}) under {root}; train one with `dfseg train`"
        )
    return run


def _from_run(run: Path, backend: str | None) -> Path:
    if backend in (None, "auto", "torch"):
        return run / BEST_CHECKPOINT
    exported = newest_export(run, backend)
    if exported is None:
        raise ArtifactError(
            f"{run}: no export that the {backend} backend can run under {run / EXPORT_DIR}; "
            f"export one with `dfseg export {run} --fmt ...`"
        )
    return exported
