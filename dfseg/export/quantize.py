"""OpenVINO INT8 artifacts: the NNCF call and the artifact it writes.

    model = openvino_core().read_model("runs/p/exp/export/openvino-fp32-b1/model.xml")
    int8 = quantize_ir(model, calibration_inputs, QuantizeSpec(mode="basic"))
    write_int8_artifact(int8, fp32_manifest, fp32_xml, folder, int8_precision="fp32")

Two modes: "basic" (`nncf.quantize`) and "accuracy" (`nncf.quantize_with_accuracy_control`,
which returns layers to floating point until a validation metric drops at most `max_drop`; the
caller gives the validation items and function). Validating the result against FP32, and the
`dfseg quantize` workflow, live in `dfseg.analysis.quantize`.

The INT8 IR goes to `<run>/export/openvino-int8/` with a manifest (precision "int8" and the
runtime precision hint for the layers left in floating point), so `dfseg bench` and
`dfseg infer` pick it up.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dfseg.config.choices import QuantizeScope
from dfseg.errors import missing_dependency
from dfseg.export.errors import ExportError
from dfseg.runtime.backends.openvino_backend import PRECISION_HINT, import_openvino
from dfseg.runtime.signal_stack import install_signal_stack
from dfseg.structures.manifest import MANIFEST_FILE, ArtifactManifest, ManifestError
from dfseg.structures.progress import ProgressCallback, ProgressEvent, report
from dfseg.structures.run_layout import RunFolder

INT8_FOLDER = "openvino-int8"
OPENVINO_FILE = "model.xml"
ValidationFn = Callable[[Any, Iterable[Any]], float]
# Node-name patterns (of the exported graph: ONNX names nodes by module path, e.g.
# /model/decoder/layers.0/cross_attn/GridSample) each scope leaves in floating point.
# "backbone": the decoder (query selection, deformable attention, FDR heads), the mask head and
# the post-processing; "no_attention": the decoder layers only.
SCOPE_PATTERNS: dict[str, tuple[str, ...]] = {
    "all": (),
    "backbone": (r".*/decoder/.*", r".*/mask_head/.*", r"^/postprocess/.*"),
    "no_attention": (r".*/decoder/layers\.\d+/.*",),
}


@dataclass(frozen=True)
class QuantizeSpec:
    """What NNCF is asked to do.

    Attributes:
        mode: "basic" (nncf.quantize) or "accuracy" (nncf.quantize_with_accuracy_control).
        preset: "mixed" (asymmetric activations) or "performance" (symmetric).
        transformer: the model has attention blocks (ModelType.TRANSFORMER).
        max_drop: accuracy mode: the largest absolute drop of the validation metric.
        scope: what may become INT8 (`SCOPE_PATTERNS`: the rest stays floating point).
    """

    mode: Literal["basic", "accuracy"] = "accuracy"
    preset: Literal["performance", "mixed"] = "mixed"
    transformer: bool = True
    max_drop: float = 0.01
    scope: QuantizeScope = "backbone"


def import_nncf() -> Any:
    try:
        import nncf
    except ImportError:
        raise missing_dependency("nncf", "export", "INT8 quantization") from None
    return nncf


def find_openvino_fp32(run: RunFolder) -> Path | None:
    """The model.xml of the newest FP32, static batch-1 OpenVINO export of the run, or None."""
    found: list[tuple[float, Path]] = []
    for folder in run.export_folders():
        try:
            manifest = ArtifactManifest.read(folder / MANIFEST_FILE)
        except ManifestError:
            continue
        xml = folder / OPENVINO_FILE
        usable = manifest.format == "openvino" and manifest.precision == "fp32"
        if usable and manifest.batch == 1 and not manifest.dynamic_batch and xml.is_file():
            found.append(((folder / MANIFEST_FILE).stat().st_mtime, xml))
    return max(found)[1] if found else None


def ensure_openvino_fp32(
    run: RunFolder, threads: int | None = None, progress: ProgressCallback | None = None
) -> Path:
    """The run's FP32 OpenVINO model, exported first when there is none."""
    existing = find_openvino_fp32(run)
    if existing is not None:
        return existing
    from dfseg.export.api import export_model
    from dfseg.export.options import ExportOptions
    from dfseg.export.source import find_export_source

    message = "no FP32 OpenVINO export yet: exporting one first"
    report(progress, ProgressEvent("quantize", 0, None, message=message))
    result = export_model(
        find_export_source(run.path),
        ExportOptions(formats=["openvino"], threads=threads),
        progress,
    )
    if not result.passed:
        raise ExportError(
            "the FP32 OpenVINO export failed its parity check: " + "; ".join(result.failures())
        )
    return Path(result.artifacts[0].model_file)


def quantize_ir(
    model: Any,
    calibration: Sequence[Any],
    to_input: Callable[[Any], np.ndarray],
    spec: QuantizeSpec,
    validation_items: Sequence[Any] = (),
    validation_fn: ValidationFn | None = None,
) -> Any:
    """Run NNCF on an OpenVINO model.

    Args:
        model: the FP32 `ov.Model`.
        calibration: calibration items (e.g. image paths), turned into inputs lazily.
        to_input: item -> [1, 3, H, W] float32 model input (calibration and validation items).
        spec: mode, preset and (accuracy mode) the largest drop.
        validation_items: accuracy mode: the items `validation_fn` is called with.
        validation_fn: accuracy mode: (compiled model, items) -> metric, higher is better.

    Raises:
        ExportError: NNCF failed (its message kept), or accuracy mode without validation.
    """
    nncf = import_nncf()
    if spec.mode == "accuracy" and (validation_fn is None or not validation_items):
        raise ExportError("accuracy-aware quantization needs validation items and a metric")
    common: dict[str, Any] = {
        "preset": getattr(nncf.QuantizationPreset, spec.preset.upper()),
        "subset_size": len(calibration),
        "model_type": nncf.ModelType.TRANSFORMER if spec.transformer else None,
    }
    ignored = ignored_scope(model, spec.scope)
    if spec.scope != "all" and not ignored:
        raise ExportError(
            f"quantize scope {spec.scope!r}: no operation of the model matched "
            f"{list(SCOPE_PATTERNS[spec.scope])}; re-export the FP32 model with this dfseg"
        )
    if ignored:
        common["ignored_scope"] = nncf.IgnoredScope(names=ignored, validate=False)
    calibration_set = nncf.Dataset(list(calibration), to_input)
    try:
        with _quiet(nncf):
            if spec.mode == "basic":
                quantized = nncf.quantize(model, calibration_set, **common)
            else:
                quantized = nncf.quantize_with_accuracy_control(
                    model, calibration_set, nncf.Dataset(list(validation_items), to_input),
                    validation_fn, max_drop=spec.max_drop, drop_type=nncf.DropType.ABSOLUTE,
                    **common,
                )  # fmt: skip
    except Exception as exc:  # NNCF raises many types; the message is what matters
        raise ExportError(
            f"NNCF {spec.mode} quantization failed: {type(exc).__name__}: {exc}"
        ) from None
    gc.collect()  # NNCF's own Cores go now, then the thread gets a stack that stays valid
    install_signal_stack()
    return quantized


def ignored_scope(model: Any, scope: QuantizeScope) -> list[str]:
    """Names of the `ov.Model`'s operations that `scope` keeps in floating point."""
    patterns = [re.compile(pattern) for pattern in SCOPE_PATTERNS[scope]]
    if not patterns:
        return []
    return [
        op.get_friendly_name()
        for op in model.get_ops()
        if any(pattern.match(op.get_friendly_name()) for pattern in patterns)
    ]


@contextlib.contextmanager
def _quiet(nncf: Any) -> Iterator[None]:
    """NNCF logs INFO lines and draws progress bars on stdout; stdout belongs to the report
    (and `--json`), so NNCF gets warnings only and its bars go to stderr."""
    level = nncf.nncf_logger.level
    nncf.set_log_level(logging.WARNING)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        nncf.set_log_level(level)


def write_int8_artifact(
    model: Any,
    manifest: ArtifactManifest,
    fp32_xml: Path,
    folder: Path,
    precision: str,
) -> Path:
    """Save the INT8 IR and its manifest into `folder` through a staging folder (never a
    half-written artifact); returns the model.xml. `precision` is the runtime hint of the
    layers left in floating point ("fp32" or "default")."""
    ov = import_openvino()
    staging = folder.with_name(f".{folder.name}-staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    int8 = manifest.model_copy(
        update={
            "precision": "int8",
            "runtime_hints": {PRECISION_HINT: precision},
            "source_checkpoint": manifest.source_checkpoint or str(fp32_xml),
        }
    )
    ov.save_model(model, str(staging / OPENVINO_FILE), compress_to_fp16=False)
    int8.write(staging)
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)
    return folder / OPENVINO_FILE


def record_metrics(folder: Path, values: dict[str, float]) -> None:
    """Add metrics (e.g. the FP32 and INT8 F1 measured after quantizing) to the manifest."""
    manifest = ArtifactManifest.read(folder / MANIFEST_FILE)
    manifest.model_copy(update={"metrics": {**manifest.metrics, **values}}).write(folder)
