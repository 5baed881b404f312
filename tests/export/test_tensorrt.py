"""TensorRT export and backend: needs TensorRT and a CUDA GPU; skipped cleanly otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from dfseg.errors import MissingDependencyError

pytestmark = [pytest.mark.export, pytest.mark.trt, pytest.mark.gpu]


def test_missing_tensorrt_is_an_actionable_error() -> None:
    from dfseg.runtime.backends.tensorrt_backend import import_tensorrt

    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match=r'pip install "dfseg\[trt\]"'):
            import_tensorrt()
    else:
        pytest.skip("TensorRT is installed")


@pytest.mark.slow
@pytest.mark.parametrize("half", [False, True])
def test_engine_matches_torch(segment_run: tuple[Path, Path], half: bool) -> None:
    pytest.importorskip("tensorrt")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from dfseg.export.api import export_model
    from dfseg.export.options import ExportOptions
    from dfseg.export.source import find_export_source

    _, run = segment_run
    options = ExportOptions(formats=["trt"], half=half, batch=2, dynamic_batch=True, force=True)
    report = export_model(find_export_source(run), options)
    artifact = report.artifacts[0]
    assert Path(artifact.model_file).suffix == ".engine"
    assert artifact.precision == ("fp16" if half else "fp32")
    assert artifact.parity is not None and artifact.parity.passed, artifact.parity
