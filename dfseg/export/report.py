"""What `dfseg export` returns: one `ArtifactReport` per written artifact."""

from __future__ import annotations

from pydantic import BaseModel

from dfseg.export.options import ExportOptions
from dfseg.export.parity import ParityReport


class ArtifactReport(BaseModel):
    """One exported artifact.

    Attributes:
        format: "onnx", "openvino" or "trt".
        precision: weights precision ("fp32", "fp16").
        runtime_precision: the compute precision the parity run used (e.g. OpenVINO "fp32",
            "bf16"), as the backend resolved it.
        folder: the artifact's folder; model_file: its model file.
        size_mb: size of the folder's files.
        seconds: time to write it.
        parity: comparison with torch (None when skipped).
    """

    format: str
    precision: str
    runtime_precision: str
    folder: str
    model_file: str
    size_mb: float
    seconds: float
    parity: ParityReport | None = None

    @property
    def passed(self) -> bool:
        return self.parity is None or self.parity.passed


class ExportReport(BaseModel):
    """All artifacts of one export run."""

    source_checkpoint: str
    run_dir: str | None
    task: str
    input_size: tuple[int, int]
    options: ExportOptions
    artifacts: list[ArtifactReport]

    @property
    def passed(self) -> bool:
        """Every artifact matched torch within tolerance."""
        return all(artifact.passed for artifact in self.artifacts)

    def failures(self) -> list[str]:
        """One line per artifact that failed its parity check."""
        return [
            f"{artifact.folder}: {'; '.join(artifact.parity.failures)}"
            for artifact in self.artifacts
            if artifact.parity is not None and not artifact.parity.passed
        ]
