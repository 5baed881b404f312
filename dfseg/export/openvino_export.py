"""OpenVINO IR from the exported ONNX: FP32 weights, or FP16-compressed weights (`half`).

The weights' precision is not the compute precision: on CPUs with bf16 support OpenVINO computes
in bf16 unless told otherwise. The manifest therefore records an explicit runtime hint (f32 for
FP32 artifacts, the device default for FP16 ones) that the openvino backend applies.
"""

from __future__ import annotations

from pathlib import Path

from dfseg.export.errors import ExportError
from dfseg.runtime.backends.onnxruntime_backend import METADATA_KEY
from dfseg.runtime.backends.openvino_backend import PRECISION_HINT, import_openvino

OPENVINO_FILE = "model.xml"


def openvino_runtime_hints(half: bool) -> dict[str, str]:
    """The manifest's runtime hints: f32 compute for FP32 weights; the device default (bf16 on
    CPUs that have it, else f32) for FP16-compressed weights."""
    return {PRECISION_HINT: "default" if half else "f32"}


def export_openvino(onnx_path: Path, xml_path: Path, half: bool, manifest_json: str) -> Path:
    """Convert an ONNX file to an OpenVINO IR (`.xml` + `.bin`).

    Args:
        onnx_path: the source ONNX file.
        xml_path: the .xml to write (the .bin is written beside it).
        half: compress the weights to FP16.
        manifest_json: stored in the IR's rt_info under `dfseg_manifest`.

    Returns:
        `xml_path`.
    """
    ov = import_openvino()
    try:
        model = ov.convert_model(str(onnx_path))
    except Exception as exc:  # conversion errors come in many types
        raise ExportError(f"OpenVINO could not convert {onnx_path}: {exc}") from None
    model.set_rt_info(manifest_json, METADATA_KEY)
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(xml_path), compress_to_fp16=half)
    return xml_path
