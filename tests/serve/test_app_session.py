"""The app's handlers and the run description it shows, without a browser."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from serve_fixtures import plant_run_files

from dfseg.analysis.run_contents import describe_run
from dfseg.serve.ui import AppSession, UserFacingError, viewable_copy


@pytest.fixture(scope="module")
def planted_run(serve_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("session-run") / "exp"
    shutil.copytree(serve_run, run)
    plant_run_files(run)
    return run


def test_describe_run_lists_models_with_bench_status_plots_and_errors(planted_run: Path) -> None:
    contents = describe_run(planted_run)
    assert contents.run == planted_run
    assert [a.path for a in contents.artifacts] == [planted_run / "best.pt"]
    assert contents.artifacts[0].bench_status == "passed"
    assert contents.artifacts[0].label.endswith("- bench: passed")
    assert contents.plots == [planted_run / "PR_curve.png"]
    assert contents.results_csv == planted_run / "results.csv"
    assert contents.bench_rows[0]["status"] == "passed"
    assert list(contents.error_gallery) == ["background"]
    loose = describe_run(planted_run / "best.pt")
    assert len(loose.artifacts) == 1 and loose.artifacts[0].path == planted_run / "best.pt"


def test_the_page_only_gets_copies_of_pictures_never_the_run_folder(
    planted_run: Path, tmp_path: Path
) -> None:
    copied = viewable_copy(describe_run(planted_run), tmp_path / "view")
    files = sorted(p.name for p in (tmp_path / "view").iterdir())
    assert files == ["PR_curve.png", "background-00000_a.jpg"]
    assert all(p.parent == tmp_path / "view" for p in copied.plots)


def test_predict_image_returns_table_downloads_and_refuses_bad_input(planted_run: Path) -> None:
    session = AppSession(describe_run(planted_run), threads=1, max_pixels=500_000)
    artifact = session.choices[0][1]
    rgb = np.full((200, 300, 3), 40, np.uint8)
    cv2.circle(rgb, (100, 100), 40, (240, 200, 60), -1)
    annotated, rows, summary, files = session.predict_image(rgb, artifact, 0.3)
    assert annotated.shape == rgb.shape and summary.startswith(f"{len(rows)} detections")
    record = json.loads(Path(files[0]).read_text())
    assert len(record["detections"]) == len(rows) > 0
    assert [d["name"] for d in record["detections"]] == [r[1] for r in rows]
    assert len(Path(files[1]).read_text().splitlines()) == len(rows)
    fewer = session.predict_image(rgb, artifact, 0.76)[1]
    assert len(fewer) < len(rows)
    plain = session.predict_image(rgb, artifact, 0.1)[1]
    thinned = session.predict_image(rgb, artifact, 0.1, 0.05)[1]  # the NMS slider at 0.05
    assert 0 < len(thinned) < len(plain)
    with pytest.raises(UserFacingError, match="upload an image"):
        session.predict_image(None, artifact, 0.3)
    with pytest.raises(UserFacingError, match="over the limit"):
        session.predict_image(np.zeros((1000, 1000, 3), np.uint8), artifact, 0.3)
    with pytest.raises(UserFacingError, match="unknown model"):
        session.predict_image(rgb, "/etc/passwd", 0.3)


@pytest.mark.export
def test_every_export_of_the_run_is_offered_with_its_bench_status_and_predicts_alike(
    planted_run: Path, tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime")
    from dfseg.export.api import export_model
    from dfseg.export.options import ExportOptions
    from dfseg.export.source import find_export_source

    run = tmp_path / "exp"
    shutil.copytree(planted_run, run)
    options = ExportOptions(formats=["onnx"], parity_images=1)
    onnx = Path(export_model(find_export_source(run / "best.pt"), options).artifacts[0].model_file)
    bench = run / "bench" / "bench.csv"
    bench.write_text(
        bench.read_text() + f"onnx fp32,onnxruntime,fp32,validation_failed,f1,0.2,{onnx}\n"
    )
    contents = describe_run(run)
    assert [a.path for a in contents.artifacts] == [run / "best.pt", onnx]
    assert (
        contents.artifacts[1].label == f"{onnx.parent.name} (onnx fp32) - bench: validation_failed"
    )
    session = AppSession(contents, threads=1)
    rgb = np.full((200, 300, 3), 40, np.uint8)
    torch_rows = session.predict_image(rgb, str(run / "best.pt"), 0.3)[1]
    onnx_rows = session.predict_image(rgb, str(onnx), 0.3)[1]
    assert [r[1] for r in onnx_rows] == [r[1] for r in torch_rows]
    np.testing.assert_allclose([r[2] for r in onnx_rows], [r[2] for r in torch_rows], atol=2e-3)
