"""`dfseg serve` for real: uvicorn on a loopback port, httpx clients, `dfseg infer` as the
reference for what a response must hold."""

from __future__ import annotations

import json
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from dfseg.cli.app import app

runner = CliRunner()


def _post(url: str, path: Path, params: str = "", multipart: bool = False) -> httpx.Response:
    data = path.read_bytes()
    if multipart:
        return httpx.post(f"{url}/predict{params}", files={"file": (path.name, data)}, timeout=120)
    headers = {"Content-Type": "image/png"}
    return httpx.post(f"{url}/predict{params}", content=data, headers=headers, timeout=120)


def _infer_records(run: Path, images: list[Path], tmp_path: Path, conf: float) -> dict[str, dict]:
    folder = tmp_path / "infer-images"
    folder.mkdir()
    for image in images:
        (folder / image.name).write_bytes(image.read_bytes())
    args = ["infer", str(run), str(folder), "--conf", str(conf), "--no-save-images", "--json"]
    result = runner.invoke(app, [*args, "--threads", "1"])
    assert result.exit_code == 0, result.output
    out_dir = Path(json.loads(result.stdout)["out_dir"])
    lines = (out_dir / "predictions.jsonl").read_text().splitlines()
    return {record["name"]: record for record in map(json.loads, lines)}


def _assert_same_detections(served: list[dict], expected: list[dict]) -> None:
    assert [d["name"] for d in served] == [d["name"] for d in expected]
    assert [d["label"] for d in served] == [d["label"] for d in expected]
    np.testing.assert_allclose(
        [d["score"] for d in served], [d["score"] for d in expected], atol=2e-4
    )
    served_boxes = np.array([d["box_xyxy"] for d in served]).reshape(-1, 4)
    expected_boxes = np.array([d["box_xyxy"] for d in expected]).reshape(-1, 4)
    np.testing.assert_allclose(served_boxes, expected_boxes, atol=0.05)
    same_outline = [
        d.get("polygons") == e.get("polygons") for d, e in zip(served, expected, strict=True)
    ]
    assert np.mean(same_outline) >= 0.9, "mask outlines differ from dfseg infer's"


def test_responses_equal_dfseg_infer(
    server_url: str, serve_run: Path, serve_images: list[Path], tmp_path: Path
) -> None:
    expected = _infer_records(serve_run, serve_images, tmp_path, conf=0.2)
    for index, image in enumerate(serve_images):
        response = _post(server_url, image, "?conf=0.2", multipart=index % 2 == 1)
        assert response.status_code == 200, response.text
        body = response.json()
        reference = expected[image.name]
        assert body["image_size"] == reference["image_size"]
        assert reference["detections"], "the reference found nothing: the comparison is empty"
        _assert_same_detections(body["detections"], reference["detections"])
        assert set(body["timing_ms"]) == {"decode", "queue", "model", "total"}


def test_query_options_filter_and_change_the_mask_format(
    server_url: str, serve_images: list[Path]
) -> None:
    image = serve_images[0]
    everything = _post(server_url, image, "?conf=0&masks=none").json()["detections"]
    assert len(everything) == 300 and all("polygons" not in d for d in everything)
    few = _post(server_url, image, "?conf=0&max_det=5&classes=circle,2&masks=rle").json()
    assert len(few["detections"]) == 5
    assert {d["name"] for d in few["detections"]} <= {"circle", "triangle"}
    from dfseg.ops.masks import rle_to_mask

    for detection in few["detections"]:
        mask = rle_to_mask(detection["rle"])
        assert mask.shape == (200, 300) and detection["rle"]["size"] == [200, 300]


def test_an_extra_nms_leaves_no_same_class_overlap_above_its_iou(
    server_url: str, serve_images: list[Path]
) -> None:
    from dfseg.ops.nms import nms_keep

    image = serve_images[0]
    plain = _post(server_url, image, "?conf=0.1&masks=none").json()["detections"]
    thinned = _post(server_url, image, "?conf=0.1&masks=none&nms_iou=0.1").json()["detections"]
    boxes = np.array([d["box_xyxy"] for d in plain])
    scores = np.array([d["score"] for d in plain])
    labels = np.array([d["label"] for d in plain])
    expected = [plain[i] for i in nms_keep(boxes, scores, labels, 0.1)]
    assert 0 < len(thinned) < len(plain)
    _assert_same_detections(thinned, expected)


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels but holds no image data (a decompression bomb's
    header: tiny file, huge image)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    pixels = chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
    return b"\x89PNG\r\n\x1a\n" + header + pixels + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"", "image/png", 400, "empty request body"),
        (b"not an image at all", "image/jpeg", 400, "not a decodable image"),
        (b"/etc/passwd", "text/plain", 400, "not a decodable image"),  # a path is not read
        (b"\x00" * (1024 * 1024 + 10), "application/octet-stream", 413, "request body over"),
        (_png_header(12000, 12000), "image/png", 413, "12000x12000 pixels is over the limit"),
        (_png_header(40000, 40000), "image/png", 413, "more pixels than the limit"),
        (b"--x\r\n\r\n--x--", "multipart/form-data; boundary=x", 400, "without a file part"),
    ],
)
def test_bad_requests_get_a_json_4xx_and_the_server_keeps_serving(
    server_url: str,
    serve_images: list[Path],
    body: bytes,
    content_type: str,
    status: int,
    message: str,
) -> None:
    headers = {"Content-Type": content_type}
    response = httpx.post(f"{server_url}/predict", content=body, headers=headers, timeout=60)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert _post(server_url, serve_images[1], "?conf=0.5").status_code == 200


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [("?conf=1.5", 422, "query.conf"), ("?classes=dog", 400, "'dog' is not a class"),
     ("?classes=7", 400, "outside 0..2"), ("?masks=png", 422, "query.masks")],
)  # fmt: skip
def test_bad_parameters_are_named(
    server_url: str, serve_images: list[Path], query: str, status: int, message: str
) -> None:
    response = _post(server_url, serve_images[0], query)
    assert response.status_code == status and message in response.json()["error"]


def test_concurrent_requests_share_model_calls_and_get_their_own_results(
    server_url: str, serve_images: list[Path]
) -> None:
    before = httpx.get(f"{server_url}/health").json()
    alone = [_post(server_url, image, "?conf=0.2").json() for image in serve_images]
    jobs = [(image, f"?conf={0.2 if i % 2 else 0.3}") for i, image in enumerate(serve_images * 4)]
    with ThreadPoolExecutor(len(jobs)) as pool:
        responses = list(pool.map(lambda job: _post(server_url, *job), jobs))
    assert all(r.status_code == 200 for r in responses)
    assert max(r.json()["batch_size"] for r in responses) > 1  # micro-batching happened
    for (image, query), response in zip(jobs, responses, strict=True):
        reference = alone[serve_images.index(image)]["detections"]
        if query.endswith("0.3"):  # this request's own threshold, not its batch-mates'
            reference = [d for d in reference if d["score"] >= 0.3]
        _assert_same_detections(response.json()["detections"], reference)
    after = httpx.get(f"{server_url}/health").json()
    served = after["requests"] - before["requests"]
    assert served == len(jobs) + len(serve_images)
    assert after["batches"] - before["batches"] < served and after["max_batch"] == 4


def test_model_route_returns_the_manifest(server_url: str) -> None:
    manifest = httpx.get(f"{server_url}/model").json()
    assert manifest["class_names"] == ["circle", "square", "triangle"]
    assert manifest["model"]["task"] == "segment"
    schema = httpx.get(f"{server_url}/openapi.json").json()
    assert set(schema["paths"]) >= {"/predict", "/health", "/model"}
    assert "multipart/form-data" in schema["paths"]["/predict"]["post"]["requestBody"]["content"]


def test_serve_refuses_a_missing_artifact_before_listening(tmp_path: Path) -> None:
    result = runner.invoke(app, ["serve", str(tmp_path / "nothing"), "--port", "0"])
    assert result.exit_code == 2
    assert "nothing" in result.output and "Traceback" not in result.output
