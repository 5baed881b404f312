"""The Python API as Ultralytics users know it: `dfseg.load(...)`, calling the model on paths,
arrays or PIL images with per-call `conf` / `classes` / `max_det`, `Detections.plot()` and
`Detections.xy`."""

from __future__ import annotations

import inspect
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import dfseg
from dfseg.runtime.errors import ArtifactError
from dfseg.structures import Detections


def _scene() -> np.ndarray:
    image = np.full((240, 320, 3), 90, np.uint8)
    cv2.circle(image, (80, 90), 40, (20, 200, 240), -1)
    cv2.rectangle(image, (180, 120), (280, 210), (200, 40, 40), -1)
    return image


def test_load_documents_its_options() -> None:
    parameters = inspect.signature(dfseg.load).parameters
    assert {"backend", "device", "conf", "class_conf", "threads", "precision", "rect"} <= set(
        parameters
    )
    assert dfseg.load.__doc__ is not None
    assert all(name in dfseg.load.__doc__ for name in parameters if name != "artifact")


def test_paths_arrays_and_pil_images_give_the_same_detections(
    segment_run_dir: Path, tmp_path: Path
) -> None:
    model = dfseg.load(segment_run_dir, conf=0.0, max_det=20)
    image = _scene()
    path = tmp_path / "scene.png"
    cv2.imwrite(str(path), image)
    from_array = model(image)
    from_path = model(path)
    from_pil = model(Image.fromarray(image[:, :, ::-1]))  # PIL images are RGB
    batch = model([image, Image.open(path)])
    assert isinstance(from_array, Detections) and isinstance(batch, list)
    for other in (from_path, from_pil, *batch):
        assert isinstance(other, Detections)
        np.testing.assert_array_equal(other.labels, from_array.labels)
        np.testing.assert_allclose(other.boxes_xyxy, from_array.boxes_xyxy, atol=1e-3)


def test_per_call_threshold_classes_and_limit(segment_run_dir: Path) -> None:
    model = dfseg.load(segment_run_dir, conf=0.0)
    image = _scene()
    everything = model(image)
    assert isinstance(everything, Detections) and len(everything) == 300
    cut = float(np.sort(everything.scores)[-10])
    high = model(image, conf=cut)
    assert isinstance(high, Detections) and len(high) == 10
    assert (high.scores >= cut).all()
    name = everything.names[0]
    only = model(image, classes=[name], max_det=5)
    assert isinstance(only, Detections) and len(only) == 5 and set(only.names) == {name}
    by_id = model(image, classes=[int(everything.labels[0])], max_det=5)
    assert isinstance(by_id, Detections)
    np.testing.assert_array_equal(by_id.labels, only.labels)
    again = model(image)  # per-call settings do not stick
    assert isinstance(again, Detections) and len(again) == 300
    with pytest.raises(ArtifactError, match="is not a class of this model"):
        model(image, classes=["unicorn"])


def test_plot_draws_on_the_predicted_image_and_xy_gives_outlines(segment_run_dir: Path) -> None:
    model = dfseg.load(segment_run_dir, conf=0.0, max_det=3)
    image = _scene()
    detections = model(image)
    assert isinstance(detections, Detections) and detections.image is not None
    drawn = detections.plot()
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    assert (drawn != image).any() and (detections.image == image).all()  # a copy is drawn on
    np.testing.assert_array_equal(detections.plot(image), drawn)
    outlines = detections.xy
    assert len(outlines) == len(detections)
    assert all(o.ndim == 2 and o.shape[1] == 2 for o in outlines)
    assert detections.masks is not None
    for outline, mask in zip(outlines, detections.masks, strict=True):
        if mask.any():  # the outline lies around the mask's pixels
            ys, xs = np.nonzero(mask)
            assert outline[:, 0].min() <= xs.min() + 1 and outline[:, 0].max() >= xs.max() - 1
            assert outline[:, 1].min() <= ys.min() + 1 and outline[:, 1].max() >= ys.max() - 1
    lone = Detections.empty(["a"], (10, 10), with_masks=False)
    with pytest.raises(ValueError, match="no image to draw on"):
        lone.plot()
