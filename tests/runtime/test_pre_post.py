from __future__ import annotations

from pathlib import Path

import numpy as np

from dfseg.ops.resize import compute_resize
from dfseg.runtime.outputs import RawOutputs
from dfseg.runtime.postprocess import PostprocessSettings, to_detections
from dfseg.runtime.preprocess import preprocess_batch, preprocess_image
from dfseg.structures.manifest import Preprocessing


def test_preprocess_is_rgb_scaled_and_letterboxed() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    image[..., 0] = 255  # blue in BGR
    tensor, params = preprocess_image(image, Preprocessing(input_size=(128, 128), keep_ratio=True))
    assert tensor.shape == (3, 128, 128) and tensor.dtype == np.float32
    assert params.pad_xy == (0, 32)
    assert tensor[2, 64, 64] == 1.0 and tensor[0, 64, 64] == 0.0  # blue lands in channel 2 (RGB)
    assert np.isclose(tensor[0, 0, 0], 114 / 255)  # padding


def test_rect_batches_pad_to_the_largest_image() -> None:
    images = [np.zeros((100, 200, 3), np.uint8), np.zeros((200, 100, 3), np.uint8)]
    batch, params = preprocess_batch(
        images, Preprocessing(input_size=(256, 256), keep_ratio=True), rect=True
    )
    assert batch.shape == (2, 3, 256, 256)
    assert params[0].input_hw == (128, 256) and params[1].input_hw == (256, 128)


def test_detections_use_class_thresholds_and_map_back() -> None:
    params = compute_resize((100, 200), (128, 128), keep_ratio=True)  # scale 0.64, pad top 32
    boxes_input = np.array([[[0, 32, 64, 64], [64, 64, 128, 96], [0, 32, 128, 96]]], np.float32)
    raw = RawOutputs(
        labels=np.array([[0, 1, 1]]),
        scores=np.array([[0.9, 0.4, 0.2]], np.float32),
        boxes=boxes_input,
        mask_logits=np.full((1, 3, 32, 32), 5.0, np.float32),
    )
    settings = PostprocessSettings(conf=0.5, class_conf={1: 0.3})
    detections = to_detections(raw, 0, params, ["a", "b"], settings)
    assert detections.labels.tolist() == [0, 1]
    np.testing.assert_allclose(detections.boxes_xyxy[0], [0, 0, 100, 50], atol=1e-3)
    assert detections.masks is not None and detections.masks.shape == (2, 100, 200)
    # Masks are all-positive logits, so each one is exactly its (clipped) box.
    assert detections.masks[0].sum() == 100 * 50
    assert not detections.masks[0][:, 100:].any() and not detections.masks[0][50:].any()
    top = to_detections(raw, 0, params, ["a", "b"], PostprocessSettings(conf=0.0, max_det=1))
    assert len(top) == 1 and top.scores[0] == np.float32(0.9)


def test_truncated_jpegs_are_read_as_training_reads_them(tmp_path: Path) -> None:
    import cv2

    from dfseg.runtime.images import read_image_bgr

    image = np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(".jpg", image)
    assert ok
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(encoded.tobytes()[:-200])  # drop the end of the scan and the EOI marker
    decoded = read_image_bgr(truncated)
    assert decoded.shape == (64, 96, 3)
    assert np.array_equal(decoded, cv2.imread(str(truncated)))
