"""`dfseg serve` on exported artifacts (a dynamic-batch ONNX file is micro-batched, a static
batch-1 one is not) and with several worker processes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from serve_fixtures import running_server
from test_server import _assert_same_detections, _post


def _export_onnx(run: Path, dynamic: bool) -> Path:
    pytest.importorskip("onnxruntime")
    from dfseg.export.api import export_model
    from dfseg.export.options import ExportOptions
    from dfseg.export.source import find_export_source

    options = ExportOptions(formats=["onnx"], batch=4 if dynamic else 1, dynamic_batch=dynamic,
                            parity_images=1)  # fmt: skip
    report = export_model(find_export_source(run / "best.pt"), options)
    return Path(report.artifacts[0].model_file)


@pytest.mark.export
def test_a_dynamic_batch_onnx_artifact_is_micro_batched_and_a_static_one_is_not(
    serve_run: Path, serve_images: list[Path], tmp_path: Path
) -> None:
    dynamic = _export_onnx(serve_run, dynamic=True)
    with running_server(
        dynamic, "--max-batch", "8", "--max-wait-ms", "100", log=tmp_path / "dynamic.log"
    ) as url:
        alone = [_post(url, image, "?conf=0.2").json() for image in serve_images]
        jobs = serve_images * 3
        with ThreadPoolExecutor(len(jobs)) as pool:
            responses = list(pool.map(lambda image: _post(url, image, "?conf=0.2"), jobs))
        health = httpx.get(f"{url}/health").json()
    assert health["backend"] == "onnxruntime" and health["max_batch"] == 8  # --max-batch
    assert max(r.json()["batch_size"] for r in responses) > 1
    for image, response in zip(jobs, responses, strict=True):
        reference = alone[serve_images.index(image)]["detections"]
        _assert_same_detections(response.json()["detections"], reference)

    static = _export_onnx(serve_run, dynamic=False)
    with running_server(static, "--max-batch", "8", log=tmp_path / "static.log") as url:
        with ThreadPoolExecutor(4) as pool:
            responses = list(pool.map(lambda image: _post(url, image), serve_images))
        assert {r.json()["batch_size"] for r in responses} == {1}
        assert httpx.get(f"{url}/health").json()["max_batch"] == 1
    assert "takes at most 1 image(s) per call" in (tmp_path / "static.log").read_text()


def test_several_workers_serve_the_same_results(
    serve_run: Path, serve_images: list[Path], server_url: str, tmp_path: Path
) -> None:
    expected = [_post(server_url, image, "?conf=0.2").json() for image in serve_images]
    with running_server(serve_run, "--workers", "2", log=tmp_path / "workers.log") as url:
        with ThreadPoolExecutor(6) as pool:
            responses = list(
                pool.map(lambda image: _post(url, image, "?conf=0.2"), serve_images * 2)
            )
        pids = {httpx.get(f"{url}/health").json()["pid"] for _ in range(10)}
    for index, response in enumerate(responses):
        assert response.status_code == 200
        _assert_same_detections(response.json()["detections"], expected[index % 3]["detections"])
    log = (tmp_path / "workers.log").read_text()
    assert log.count("Application startup complete") == 2, log  # one model per worker process
    assert all(pid > 0 for pid in pids)
