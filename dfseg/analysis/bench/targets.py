"""What `dfseg bench` runs: the run's checkpoint (torch) and every exported artifact of the run,
on every asked device, OpenVINO once per inference precision."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dfseg.analysis.quantize import QuantizeReport
from dfseg.export.parity import ParityReport
from dfseg.runtime.artifacts import model_file_in
from dfseg.runtime.errors import ArtifactError
from dfseg.structures.manifest import MANIFEST_FILE, ArtifactManifest, ManifestError
from dfseg.structures.run_layout import RunFolder

FORMAT_BACKENDS = {
    "checkpoint": "torch",
    "onnx": "onnxruntime",
    "openvino": "openvino",
    "tensorrt": "tensorrt",
}
OPENVINO_PRECISIONS = ("fp32", "default")
"""OpenVINO runs every artifact twice: with an f32 precision hint, and with the device's default
(bf16 on CPUs with AVX-512 BF16 or AMX), because the two differ in speed and accuracy."""


@dataclass(frozen=True)
class BenchTarget:
    """One row of the benchmark.

    Attributes:
        name: unique label, e.g. "openvino-int8:default cpu" (":hint" for OpenVINO only).
        artifact: the model file (best.pt, model.onnx, model.xml, model.engine); None when the
            export folder holds no usable model (`problem` says why).
        folder: the export folder (the run folder for the checkpoint).
        format: manifest format ("checkpoint", "onnx", "openvino", "tensorrt").
        weights_precision: the artifact's precision ("fp32", "fp16", "int8").
        backend: the runtime backend that runs it.
        device: "cpu" or "cuda".
        inference_precision: the OpenVINO precision hint ("fp32" or "default"), else None.
        problem: why the artifact cannot run at all (an unreadable manifest, a missing file).
        check_failure: why the artifact failed the check made when it was written: the parity
            check of `dfseg export`, or the accuracy gate of `dfseg quantize` (it still runs,
            and its row says so).
    """

    name: str
    artifact: Path | None
    folder: Path
    format: str
    weights_precision: str
    backend: str
    device: str
    inference_precision: str | None = None
    problem: str | None = None
    check_failure: str | None = None

    @property
    def is_reference(self) -> bool:
        """The torch FP32 checkpoint on CPU, which accuracy drops are measured against."""
        return self.format == "checkpoint" and self.device == "cpu"

    @property
    def size_mb(self) -> float | None:
        """Size of the model files (the folder's files but the manifest; best.pt for torch)."""
        if self.artifact is None or not self.artifact.exists():
            return None
        if self.format == "checkpoint":
            return self.artifact.stat().st_size / 2**20
        files = [f for f in self.folder.iterdir() if f.is_file() and f.name != MANIFEST_FILE]
        return sum(f.stat().st_size for f in files) / 2**20


def find_bench_targets(run: RunFolder, devices: Sequence[str] = ("cpu",)) -> list[BenchTarget]:
    """The checkpoint and every `<run>/export/*/` artifact, for each device that can run it.

    TensorRT artifacts run only on "cuda" and OpenVINO ones only on "cpu"; an artifact no asked
    device can run is still listed once, as a target with a `problem`.
    """
    described: list[tuple[Path, str, str, Path | None, str | None]] = [
        (run.path, "checkpoint", "fp32", run.best, None)
    ]
    if run.export_dir.is_dir():
        described += [
            _describe_export(folder)
            for folder in sorted(run.export_dir.iterdir())
            if folder.is_dir() and not folder.name.startswith(".")
        ]
    targets: list[BenchTarget] = []
    for folder, fmt, precision, artifact, problem in described:
        runnable = [d for d in devices if _device_runs(fmt, d)]
        if not runnable:
            problem = problem or f"{fmt} cannot run on {', '.join(devices)}"
            runnable = [devices[0]]
        label = "torch" if fmt == "checkpoint" else folder.name
        check_failure = None if fmt == "checkpoint" else _check_failure(folder)
        for device in runnable:
            for hint in OPENVINO_PRECISIONS if fmt == "openvino" else (None,):
                targets.append(
                    BenchTarget(
                        name=f"{label}:{hint} {device}" if hint else f"{label} {device}",
                        artifact=artifact,
                        folder=folder,
                        format=fmt,
                        weights_precision=precision,
                        backend=FORMAT_BACKENDS.get(fmt, fmt),
                        device=device,
                        inference_precision=hint,
                        problem=problem,
                        check_failure=check_failure,
                    )
                )
    return targets


def _check_failure(folder: Path) -> str | None:
    """Why the artifact failed the check made when it was written (None: passed, or no check
    recorded)."""
    parity = ParityReport.read(folder)
    if parity is not None and not parity.passed:
        return "exported, but its parity check against torch failed: " + "; ".join(
            parity.failures
        )
    quantized = QuantizeReport.read(folder)
    if quantized is not None and not quantized.passed:
        return f"quantized, but the {quantized.verdict} (dfseg quantize)"
    return None


def _device_runs(fmt: str, device: str) -> bool:
    if fmt == "tensorrt":
        return device.startswith("cuda")
    if fmt == "openvino":
        return device == "cpu"
    return True


def _describe_export(folder: Path) -> tuple[Path, str, str, Path | None, str | None]:
    """(folder, format, weights precision, model file, problem) of one export folder."""
    try:
        manifest = ArtifactManifest.read(folder / MANIFEST_FILE)
        model = model_file_in(folder)
    except ManifestError as exc:
        return folder, "unknown", "?", None, str(exc)
    except ArtifactError as exc:
        return folder, manifest.format, manifest.precision, None, str(exc)
    return folder, manifest.format, manifest.precision, model, None
