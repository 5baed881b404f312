"""Semantic models after training: ONNX and OpenVINO exports (logits or argmax output) checked
pixel by pixel against torch, the runtime's class maps equal to what validation scores, `infer`
writing overlays and index PNGs, `bench` and `quantize` scoring mIoU, and the commands that do
not take semantic models yet saying so."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))

from run_builder import CLASSES, write_run

from dfseg.cli.app import app
from dfseg.config import load_project
from dfseg.errors import DfsegError
from dfseg.export.api import export_model
from dfseg.export.options import ExportOptions
from dfseg.export.report import ExportReport
from dfseg.export.source import find_export_source
from dfseg.runtime.predictor import load_predictor
from dfseg.runtime.preprocess import preprocess_batch
from dfseg.structures.run_layout import RunFolder

runner = CliRunner()
NAMES = ["background", *CLASSES]


@pytest.fixture(scope="module")
def semantic_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("openvino")
    return write_run(tmp_path_factory.mktemp("semantic-export"), task="semantic")


@pytest.fixture(scope="module")
def logits_export(semantic_run: tuple[Path, Path]) -> ExportReport:
    options = ExportOptions(formats=["onnx", "openvino"], parity_images=2)
    return export_model(find_export_source(semantic_run[0]), options)


@pytest.fixture(scope="module")
def argmax_export(semantic_run: tuple[Path, Path]) -> ExportReport:
    options = ExportOptions(formats=["onnx", "openvino"], parity_images=2, semantic_output="argmax")
    return export_model(find_export_source(semantic_run[0]), options)


def _image(hw: tuple[int, int], seed: int) -> np.ndarray:
    """A smooth random BGR image (neighbouring pixels alike, so classes form regions)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, hw[0] // 16), max(2, hw[1] // 16), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((hw[1], hw[0]), Image.BILINEAR))


def test_logit_exports_agree_with_torch_pixel_by_pixel(logits_export: ExportReport) -> None:
    assert logits_export.task == "semantic" and logits_export.passed
    for artifact in logits_export.artifacts:
        parity = artifact.parity
        assert parity.pixel_agreement is not None and parity.pixel_agreement >= 0.999
        assert parity.max_logit_diff is not None and parity.max_logit_diff < 1e-2
        assert parity.compared == 2 * 256 * 256  # every input pixel of the two parity images
        manifest = json.loads((Path(artifact.folder) / "manifest.json").read_text())
        assert manifest["outputs"] == ["semantic_logits"]
        assert manifest["class_names"] == NAMES


def test_onnx_graph_has_the_semantic_output(logits_export: ExportReport) -> None:
    import onnxruntime as ort

    onnx_file = next(a.model_file for a in logits_export.artifacts if a.format == "onnx")
    session = ort.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])
    (output,) = session.get_outputs()
    assert output.name == "semantic_logits" and output.shape == [1, len(NAMES), 256, 256]


def test_argmax_exports_output_class_ids(
    argmax_export: ExportReport, logits_export: ExportReport
) -> None:
    assert argmax_export.passed
    for artifact in argmax_export.artifacts:
        assert Path(artifact.folder).name.endswith("-argmax")
        manifest = json.loads((Path(artifact.folder) / "manifest.json").read_text())
        assert manifest["outputs"] == ["semantic_labels"]
    argmax = load_predictor(Path(argmax_export.artifacts[1].model_file))
    logits = load_predictor(Path(logits_export.artifacts[1].model_file))
    batch = np.stack([_image((256, 256), 1)])
    raw = argmax.run_resized(batch)
    assert raw.semantic is not None and raw.semantic.dtype == np.uint8
    assert raw.semantic.shape == (1, 256, 256)
    assert raw.semantic.max() < len(NAMES)
    # at the input size the argmax in the graph is the argmax of the logits
    reference = logits.run_resized(batch).semantic
    assert reference is not None
    assert (raw.semantic == reference.argmax(axis=1)).mean() >= 0.999


def test_runtime_class_maps_are_what_validation_scores(
    semantic_run: tuple[Path, Path], logits_export: ExportReport
) -> None:
    """A 200x330 image (resized and padded or stretched to 256x256): the runtime's class map in
    original pixels equals the one validation computes from torch's logits."""
    from dfseg.nn.trained import load_trained_model
    from dfseg.training.semantic_evaluation import class_map_in_original

    _, run = semantic_run
    image = _image((200, 330), 2)
    model, manifest = load_trained_model(run / "best.pt")
    tensor, params = preprocess_batch([image], manifest.preprocessing)
    with torch.inference_mode():
        logits = model(torch.from_numpy(tensor))["semantic_logits"][0]
    expected = class_map_in_original(logits, params[0]).numpy()
    assert expected.shape == (200, 330) and len(np.unique(expected)) > 1
    for target in (run, Path(logits_export.artifacts[1].model_file)):  # torch, OpenVINO
        found = load_predictor(target)(image)
        assert found.class_map is not None and found.class_map.shape == (200, 330)
        assert len(found) == 0  # no detections: a class per pixel
        assert (found.class_map == expected).mean() >= 0.999
        assert sum(found.class_pixels().values()) == 200 * 330


def test_infer_writes_overlays_index_masks_and_pixel_counts(
    semantic_run: tuple[Path, Path], logits_export: ExportReport
) -> None:
    project, _ = semantic_run
    images = project.parent / "data" / "images"
    onnx_folder = next(a.folder for a in logits_export.artifacts if a.format == "onnx")
    result = runner.invoke(app, ["infer", onnx_folder, str(images), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert report["task"] == "semantic" and report["images"] == 8 and report["detections"] == 0
    out = Path(report["out_dir"])
    predictor = load_predictor(Path(onnx_folder))
    first = sorted(images.iterdir())[0]
    expected = predictor(first).class_map
    mask = Image.open(out / "masks" / f"{first.stem}.png")
    assert mask.mode == "P"  # VOC palette, values = class ids
    assert np.array_equal(np.asarray(mask), expected)
    overlay = Image.open(out / first.name)
    assert overlay.size == Image.open(first).size
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 8
    height, width = lines[0]["image_size"]
    assert sum(lines[0]["class_pixels"].values()) == height * width
    assert set(report["per_class"]) <= set(NAMES)


def test_infer_refuses_per_object_outputs_before_writing(
    semantic_run: tuple[Path, Path],
) -> None:
    project, run = semantic_run
    before = sorted(p.name for p in run.iterdir())
    images = project.parent / "data" / "images"
    result = runner.invoke(app, ["infer", str(run), str(images), "--save-txt", "--save-crops"])
    assert result.exit_code != 0
    assert "--save-txt, --save-crops" in result.output and "semantic" in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in run.iterdir()) == before  # no empty infer folder


def test_bench_scores_miou_for_every_format(
    semantic_run: tuple[Path, Path], logits_export: ExportReport, argmax_export: ExportReport
) -> None:
    from dfseg.analysis.bench.run import BenchSettings, bench_run

    project, run = semantic_run
    settings = BenchSettings(warmup=1, runs=2, threads=2, prediction_images=1)
    report = bench_run(RunFolder(run), load_project(project), settings)
    assert report.metric == "miou" and report.metric_group == "semantic"
    rows = {row.name: row for row in report.rows}
    assert all(row.status == "ok" for row in report.rows), [r.reason for r in report.rows]
    torch_row = rows["torch cpu"]
    assert torch_row.semantic is not None and torch_row.drop == 0.0
    fp32 = [r for r in report.rows if r.inference_precision == "fp32"]
    assert len(fp32) >= 5  # torch, two ONNX, two OpenVINO with the f32 hint
    for row in fp32:
        assert row.semantic is not None
        assert abs(row.semantic.miou - torch_row.semantic.miou) < 1e-3, row.name
    csv_header = (Path(report.out_dir) / "bench.csv").read_text().splitlines()[0].split(",")
    assert {"miou", "mpa", "pixel_accuracy"} <= set(csv_header)
    assert list((Path(report.out_dir) / "predictions").glob("*.png"))


def test_int8_is_validated_on_miou(
    semantic_run: tuple[Path, Path], logits_export: ExportReport
) -> None:
    pytest.importorskip("nncf")
    from dfseg.analysis.quantize import QuantizeOptions, quantize_run

    project, run = semantic_run
    options = QuantizeOptions(
        mode="basic", calibration_images=4, threads=2, warmup=1, timing_runs=2, force=True
    )
    report = quantize_run(RunFolder(run), load_project(project), options)
    assert report.metric == "miou"
    assert report.fp32.semantic is not None and report.int8.semantic is not None
    assert report.fp32.metric == pytest.approx(report.fp32.semantic.miou)
    assert report.drop == pytest.approx(report.fp32.metric - report.int8.metric)
    assert report.passed == (report.drop <= report.max_drop + 1e-12)


def test_serve_refuses_semantic_models(semantic_run: tuple[Path, Path]) -> None:
    from dfseg.serve.options import ServeOptions
    from dfseg.serve.server import load_state

    _, run = semantic_run
    with pytest.raises(DfsegError, match="semantic model"):
        load_state(ServeOptions(artifact=str(run)))


def test_errors_lists_confusions_and_the_worst_images(semantic_run: tuple[Path, Path]) -> None:
    from dfseg.analysis.split_data import split_images_for
    from dfseg.data.semantic import annotation_to_index_map

    project, run = semantic_run
    result = runner.invoke(app, ["errors", str(project), "--worst", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert report["task"] == "semantic" and len(report["worst_images"]) == 2
    out = Path(report["out_dir"])
    assert (out / "confusion_matrix.png").is_file()
    assert len((out / "worst_images.csv").read_text().splitlines()) == report["images"] + 1
    assert all(Path(w["gallery"]).is_file() for w in report["worst_images"])
    # the worst image's mIoU, recomputed here from its two maps
    worst = report["worst_images"][0]
    split = split_images_for(load_project(project), "val")
    annotation = next(a for a in split.annotations if str(a.image_path) == worst["image"])
    predicted = load_predictor(run)(annotation.image_path).class_map
    labelled = annotation_to_index_map(annotation)
    ious = []
    for k in range(len(NAMES)):
        p, t = predicted == k, (labelled == k)
        p &= labelled != 255
        union = (p | t).sum()
        if union:
            ious.append((p & t).sum() / union)
    assert worst["miou"] == pytest.approx(float(np.mean(ious)), abs=1e-4)
    assert worst["miou"] <= min(w["miou"] for w in report["worst_images"])
    shares = [c["share"] for c in report["confusions"]]
    assert all(0 < share <= 1 for share in shares)
    pixels = [c["pixels"] for c in report["confusions"]]
    assert pixels == sorted(pixels, reverse=True)


def test_decoder_limits_are_refused_for_semantic_models(semantic_run: tuple[Path, Path]) -> None:
    options = ExportOptions(formats=["onnx"], num_queries=50)
    with pytest.raises(DfsegError, match="for detect and segment models"):
        export_model(find_export_source(semantic_run[0]), options)
