"""Which configurations `dfseg bench` runs, from a run folder's exports (no models needed)."""

from __future__ import annotations

from pathlib import Path

from dfseg.analysis.bench.report import BenchRow
from dfseg.analysis.bench.run import BenchSettings, _judge
from dfseg.analysis.bench.targets import find_bench_targets
from dfseg.analysis.quantize import (
    QUANTIZE_REPORT_FILE,
    PrecisionResult,
    QuantizeReport,
)
from dfseg.export.parity import ParityReport
from dfseg.metrics import GroupMetrics
from dfseg.structures.manifest import ArtifactManifest, ModelDescription, Preprocessing
from dfseg.structures.run_layout import RunFolder


def write_export(run: Path, name: str, fmt: str, precision: str, model_file: str) -> Path:
    folder = run / "export" / name
    folder.mkdir(parents=True)
    ArtifactManifest(
        format=fmt,  # type: ignore[arg-type]
        precision=precision,  # type: ignore[arg-type]
        model=ModelDescription(size="n", num_classes=1, task="detect", image_size=(64, 64)),
        class_names=["a"],
        preprocessing=Preprocessing(input_size=(64, 64)),
    ).write(folder)
    (folder / model_file).write_bytes(b"0" * 2048)
    return folder


def test_every_export_is_a_target_and_openvino_runs_per_precision(tmp_path: Path) -> None:
    (tmp_path / "best.pt").write_bytes(b"0" * 1024)
    write_export(tmp_path, "onnx-fp32-b1", "onnx", "fp32", "model.onnx")
    ov = write_export(tmp_path, "openvino-int8", "openvino", "int8", "model.xml")
    (ov / "model.bin").write_bytes(b"0" * 4096)
    write_export(tmp_path, "trt-fp16-b1", "tensorrt", "fp16", "model.engine")
    (tmp_path / "export" / "half-written").mkdir()  # no manifest
    targets = {t.name: t for t in find_bench_targets(RunFolder(tmp_path), ["cpu"])}
    assert list(targets) == [
        "torch cpu",
        "half-written cpu",
        "onnx-fp32-b1 cpu",
        "openvino-int8:fp32 cpu",
        "openvino-int8:default cpu",
        "trt-fp16-b1 cpu",
    ]
    assert targets["torch cpu"].is_reference and targets["torch cpu"].backend == "torch"
    assert targets["openvino-int8:fp32 cpu"].inference_precision == "fp32"
    assert targets["openvino-int8:default cpu"].weights_precision == "int8"
    assert targets["openvino-int8:fp32 cpu"].size_mb == (2048 + 4096) / 2**20  # xml + bin
    assert "cannot run on cpu" in (targets["trt-fp16-b1 cpu"].problem or "")
    assert "manifest" in (targets["half-written cpu"].problem or "")
    assert targets["onnx-fp32-b1 cpu"].problem is None


def test_a_failed_parity_check_is_carried_to_the_target(tmp_path: Path) -> None:
    (tmp_path / "best.pt").write_bytes(b"0")
    for name, passed in (("onnx-fp32-b1", True), ("onnx-fp32-dyn", False)):
        folder = write_export(tmp_path, name, "onnx", "fp32", "model.onnx")
        ParityReport(
            images=2, image_source="val", precision="fp32", compared=4, matched=3 + passed,
            max_score_diff=0.0, max_box_diff_px=0.0, tolerance={}, passed=passed,
            failures=[] if passed else ["1 of 4 detections unmatched"],
        ).write(folder)  # fmt: skip
    write_export(tmp_path, "onnx-old", "onnx", "fp32", "model.onnx")  # exported before parity.json
    int8 = write_export(tmp_path, "openvino-int8", "openvino", "int8", "model.xml")
    (int8 / QUANTIZE_REPORT_FILE).write_text(_quantize_report(drop=0.0134).model_dump_json())
    failures = {t.name: t.check_failure for t in find_bench_targets(RunFolder(tmp_path))}
    parity = "exported, but its parity check against torch failed: 1 of 4 detections unmatched"
    gate = (
        "quantized, but the INT8 f1 drop +0.0134 against FP32, beyond the allowed 0.01 "
        "(dfseg quantize)"
    )
    assert failures == {
        "torch cpu": None,
        "onnx-fp32-b1 cpu": None,
        "onnx-fp32-dyn cpu": parity,
        "onnx-old cpu": None,
        "openvino-int8:fp32 cpu": gate,
        "openvino-int8:default cpu": gate,
    }
    (int8 / QUANTIZE_REPORT_FILE).write_text(_quantize_report(drop=0.002).model_dump_json())
    assert all(
        t.check_failure is None for t in find_bench_targets(RunFolder(tmp_path)) if t.folder == int8
    )


def _quantize_report(drop: float) -> QuantizeReport:
    group = GroupMetrics(precision=1, recall=1, f1=0.5, map50=1, map50_95=1, mean_iou=1)
    result = PrecisionResult(
        artifact="model.xml", weights_precision="int8", inference_precision="fp32",
        metric=0.5, box=group, latency_ms=1.0, latency_p95_ms=1.0,
    )  # fmt: skip
    return QuantizeReport(
        mode="basic", metric="f1", max_drop=0.01, preset="mixed", calibration_requested=4,
        calibration_images=4, validation_images=4, threshold=0.5, folder="openvino-int8",
        fp32=result, int8=result, drop=drop, passed=drop <= 0.01, seconds=1.0,
    )  # fmt: skip


def test_cuda_adds_rows_for_formats_that_run_there(tmp_path: Path) -> None:
    (tmp_path / "best.pt").write_bytes(b"0")
    write_export(tmp_path, "trt-fp16-b1", "tensorrt", "fp16", "model.engine")
    names = [t.name for t in find_bench_targets(RunFolder(tmp_path), ["cpu", "cuda"])]
    assert names == ["torch cpu", "torch cuda", "trt-fp16-b1 cuda"]


def row(metric: float) -> BenchRow:
    return BenchRow(name="x", format="onnx", weights_precision="fp32", backend="b", device="cpu",
                    metric=metric)  # fmt: skip


def test_drop_is_judged_against_the_reference() -> None:
    strict = BenchSettings(max_drop=0.01)
    assert _judge(row(0.495), 0.5, strict).status == "ok"
    failed = _judge(row(0.45), 0.5, strict)
    assert failed.status == "validation_failed" and failed.drop == 0.5 - 0.45
    assert _judge(row(0.45), 0.5, BenchSettings()).status == "ok"  # no limit given
    assert _judge(row(float("nan")), 0.5, BenchSettings()).status == "validation_failed"
    assert _judge(row(0.6), None, strict).drop is None  # torch did not run
