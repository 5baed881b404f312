"""Which model file a target means for a backend: a model file, an export folder, or a run (its
best.pt, or its newest export the backend runs). What a target is (project file, run folder,
...) is decided by `dfseg.structures.run_layout.resolve_target`."""

from __future__ import annotations

from pathlib import Path

from dfseg.runtime.errors import ArtifactError
from dfseg.structures.manifest import MANIFEST_FILE, ArtifactManifest, ManifestError
from dfseg.structures.run_layout import RunFolder, resolve_target

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


def newest_export(run: RunFolder, backend: str) -> Path | None:
    """The model file of the newest export of the run that `backend` can run, its own format
    first (an OpenVINO IR before an ONNX file for the openvino backend)."""
    formats = BACKEND_FORMATS.get(backend, ())
    found: list[tuple[int, float, Path]] = []
    for folder in run.export_folders():
        manifest_path = folder / MANIFEST_FILE
        try:
            manifest = ArtifactManifest.read(manifest_path)
        except ManifestError:
            continue
        if manifest.format in formats:
            preference = -formats.index(manifest.format)
            found.append((preference, manifest_path.stat().st_mtime, folder))
    return model_file_in(max(found)[2]) if found else None


def resolve_artifact(target: Path | str, backend: str | None = None) -> Path:
    """The model file `target` designates.

    Args:
        target: a model file (.pt, .onnx, .xml, .engine); an export folder (holding
            manifest.json); a run folder (its best.pt, or with a non-torch `backend` its newest
            export for that backend); a folder of runs or a project file (the newest run).
        backend: the backend that will run it (None: chosen from the file type).

    Raises:
        ArtifactError: an unknown file type, no export for the backend.
        RunNotFoundError: nothing there, or no trained run.
    """
    resolved = resolve_target(target)
    if resolved.file is not None:
        if resolved.file.is_dir():
            return model_file_in(resolved.file)
        default_backend(resolved.file)  # raises on an unknown file type
        return resolved.file
    assert resolved.run is not None  # a project file or a folder of runs gives its newest run
    return _from_run(resolved.run, backend)


def _from_run(run: RunFolder, backend: str | None) -> Path:
    if backend in (None, "auto", "torch"):
        return run.best
    exported = newest_export(run, backend)
    if exported is None:
        raise ArtifactError(
            f"{run.path}: no export that the {backend} backend can run under {run.export_dir}; "
            f"export one with `dfseg export {run.path} --fmt ...`"
        )
    return exported
