"""OpenVINO throughput mode (`streams`, `infer --streams`): the images of a batch run on
parallel infer requests of the real OpenVINO runtime and come back in input order, equal to
one-request latency mode, for dynamic- and fixed-batch artifacts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from detection_asserts import assert_same_detections
from typer.testing import CliRunner

import dfseg
from dfseg.cli.app import app
from dfseg.export.report import ExportReport
from dfseg.runtime.errors import BackendError
from dfseg.structures.manifest import MANIFEST_FILE, ArtifactManifest

pytestmark = pytest.mark.export


def _images(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    images = []
    for index in range(count):
        image = rng.integers(0, 80, (200 + 10 * index, 260, 3), dtype=np.uint8)
        image[40:120, 30 + 20 * index : 130 + 20 * index] = (20, 180 + 10 * index, 230)
        images.append(image)
    return images


def _openvino_folder(exported: ExportReport) -> Path:
    return Path(next(a for a in exported.artifacts if a.format == "openvino").folder)


def _fixed_batch_copy(folder: Path, target: Path, batch: int) -> Path:
    """The export with its manifest saying "static batch `batch`" (the graph itself still takes
    any batch, so what is tested is the backend's cutting and padding)."""
    shutil.copytree(folder, target)
    manifest = ArtifactManifest.read(target / MANIFEST_FILE)
    manifest.model_copy(update={"batch": batch, "dynamic_batch": False}).write(target)
    return target


@pytest.mark.parametrize("fixed_batch", [None, 2])
def test_streams_give_the_latency_mode_results_in_order(
    exported: ExportReport, tmp_path: Path, fixed_batch: int | None
) -> None:
    folder = _openvino_folder(exported)
    if fixed_batch is not None:
        folder = _fixed_batch_copy(folder, tmp_path / "fixed", fixed_batch)
    images = _images(5)  # odd: a fixed batch of 2 pads its last piece
    latency = dfseg.load(folder, threads=1, conf=0.0, max_det=10)
    parallel = dfseg.load(folder, threads=2, conf=0.0, max_det=10, streams=2)
    assert parallel.backend.info["streams"] == "2"
    assert parallel.backend.fixed_batch is None  # it takes any batch and cuts it itself
    want = latency.predict_batch(images, batch_size=1)
    got = parallel.predict_batch(images, batch_size=5)
    assert len(got) == 5
    for ours, reference in zip(got, want, strict=True):
        assert_same_detections(ours, reference)
    # a batch smaller than the streams works too
    assert_same_detections(parallel.predict_batch(images[:1], batch_size=1)[0], want[0])


def test_streams_are_refused_off_openvino(segment_run: tuple[Path, Path]) -> None:
    _, run = segment_run
    with pytest.raises(BackendError, match="OpenVINO's throughput mode"):
        dfseg.load(run / "best.pt", streams=2)


def test_infer_streams_writes_what_one_stream_writes(
    exported: ExportReport, tmp_path: Path
) -> None:
    import cv2

    source = tmp_path / "images"
    source.mkdir()
    for index, image in enumerate(_images(5)):
        cv2.imwrite(str(source / f"{index}.png"), image)
    folder = shutil.copytree(_openvino_folder(exported), tmp_path / "model")
    lines = {}
    for streams in (None, 2):
        args = ["infer", str(folder), str(source), "--conf", "0.05", "--no-save-images"]
        args += ["--threads", "2"] + ([] if streams is None else ["--streams", str(streams)])
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        out = sorted(folder.glob("infer*"))[-1]
        text = (out / "predictions.jsonl").read_text()
        records = [json.loads(line) for line in text.splitlines()]
        lines[streams] = {
            Path(r["source"]).name: [(d["name"], round(d["score"], 2)) for d in r["detections"]]
            for r in records
        }
    assert lines[2] == lines[None] and len(lines[None]) == 5
