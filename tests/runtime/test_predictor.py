"""`Predictor` on the torch backend: inputs, batching, thresholds, original-pixel outputs, rect."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import dfseg
from dfseg.runtime.errors import ArtifactError, BackendError, ImageReadError
from dfseg.runtime.predictor import Predictor, load_predictor
from dfseg.structures import Detections


def _images(count: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    sizes = [(256, 256), (180, 300), (400, 240)][:count]
    images = []
    for height, width in sizes:
        image = np.full((height, width, 3), 90, np.uint8)
        for _ in range(3):
            x, y = int(rng.integers(0, width - 60)), int(rng.integers(0, height - 60))
            colour = tuple(int(c) for c in rng.integers(0, 255, 3))
            cv2.circle(image, (x + 30, y + 30), 25, colour, -1)
        images.append(image)
    return images


def _assert_same(a: Detections, b: Detections) -> None:
    assert len(a) == len(b) > 0
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    np.testing.assert_allclose(a.boxes_xyxy, b.boxes_xyxy, atol=1e-2)
    if a.masks is not None and b.masks is not None:
        assert (a.masks != b.masks).mean() < 1e-3


@pytest.fixture(scope="module")
def predictor(segment_run_dir: Path) -> Predictor:
    return load_predictor(segment_run_dir, conf=0.0, max_det=25, threads=2)


def test_batches_of_any_size_equal_single_image_results(predictor: Predictor) -> None:
    images = _images()
    singles = [predictor(image) for image in images]
    for batch_size in (2, 3):
        batched = predictor.predict_batch(images, batch_size=batch_size)
        for got, want in zip(batched, singles, strict=True):
            _assert_same(got, want)  # type: ignore[arg-type]


def test_outputs_are_in_original_pixels(predictor: Predictor) -> None:
    for image in _images():
        detections = predictor(image)
        assert isinstance(detections, Detections)
        height, width = image.shape[:2]
        assert detections.image_size == (height, width) and len(detections) == 25
        boxes = detections.boxes_xyxy
        assert (boxes[:, [0, 2]] <= width).all() and (boxes[:, [1, 3]] <= height).all()
        assert (boxes >= 0).all() and (np.diff(detections.scores) <= 0).all()
        assert detections.masks is not None and detections.masks.shape == (25, height, width)
        assert detections.names[0] in ["circle", "square", "triangle"]


def test_warmup_is_left_out_of_the_stage_times(segment_run_dir: Path) -> None:
    fresh = load_predictor(segment_run_dir, threads=2)
    fresh.warmup()
    assert fresh.times.images == 0 and fresh.times.inference == 0.0
    fresh.predict_batch(_images(2), batch_size=1)
    assert fresh.times.images == 2 and fresh.times.inference > 0.0


def test_paths_and_arrays_give_the_same_result(predictor: Predictor, tmp_path: Path) -> None:
    image = _images(1)[0]
    path = tmp_path / "näme.png"  # non-ASCII file names work
    assert cv2.imencode(".png", image)[1].tofile(str(path)) is None
    from_path, from_array = predictor([path, image])  # type: ignore[misc]
    _assert_same(from_path, from_array)
    with pytest.raises(ImageReadError, match="not a readable image"):
        (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
        predictor(tmp_path / "broken.jpg")


def test_thresholds_default_to_the_manifest_and_apply_per_class(segment_run_dir: Path) -> None:
    default = dfseg.load(segment_run_dir / "best.pt")
    assert default.settings.conf == pytest.approx(0.02)  # the run's tuned threshold
    image = _images(1)[0]
    everything = load_predictor(segment_run_dir, conf=0.0)(image)
    assert isinstance(everything, Detections) and len(everything) == 300
    strict = load_predictor(segment_run_dir, conf=0.0, class_conf={"square": 1.0})(image)
    assert isinstance(strict, Detections) and "square" not in strict.names
    assert len(strict) == sum(name != "square" for name in everything.names)
    with pytest.raises(ArtifactError, match=r"not classes of this model.*circle"):
        load_predictor(segment_run_dir, class_conf={"dog": 0.5})


def test_rect_pads_letterboxed_inputs_to_a_multiple_of_32(letterbox_run_dir: Path) -> None:
    predictor = load_predictor(letterbox_run_dir, conf=0.0, max_det=10, rect=True)
    seen: list[tuple[int, ...]] = []
    run = predictor.backend.run
    predictor.backend.run = lambda images: seen.append(images.shape) or run(images)  # type: ignore[method-assign, func-returns-value]
    wide = np.zeros((170, 320, 3), np.uint8)
    cv2.rectangle(wide, (40, 20), (120, 90), (0, 200, 255), -1)
    detections = predictor(wide)
    assert seen == [(1, 3, 192, 320)]  # 320x170 padded to 320x192, not 320x320
    assert isinstance(detections, Detections) and len(detections) == 10
    assert detections.boxes_xyxy[:, 3].max() <= 170
    with pytest.raises(BackendError, match="too small"):
        predictor(np.zeros((30, 320, 3), np.uint8))  # 320x32: 50 anchors, 300 queries


def test_rect_needs_an_artifact_that_takes_any_size(segment_run_dir: Path) -> None:
    predictor = load_predictor(segment_run_dir)
    with pytest.raises(BackendError, match="rectangular inference"):
        Predictor(_StaticSize(predictor.backend), predictor.settings, rect=True)  # type: ignore[arg-type]


class _StaticSize:
    def __init__(self, backend: object) -> None:
        self.path = backend.path  # type: ignore[attr-defined]
        self.dynamic_size = False
