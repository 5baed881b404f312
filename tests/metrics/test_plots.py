"""Every plot writes a real PNG of the expected size with drawn (non-uniform) content."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dfseg.metrics import (
    ImageGroundTruth,
    ImagePredictions,
    MetricsInputError,
    confusion_matrix,
    evaluate_coco,
    match_for_thresholds,
)
from dfseg.metrics.plots import (
    plot_confidence_curve,
    plot_confusion_matrix,
    plot_label_distribution,
    plot_pr_curves,
    plot_prediction_grid,
)
from dfseg.metrics.plots.grid import GT_COLOR, PRED_COLOR

NAMES = ["person", "car", "dog"]


def _read_png(path: Path) -> np.ndarray:
    assert path.suffix == ".png" and path.is_file()
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def _assert_drawn(pixels: np.ndarray, width: int, height: int) -> None:
    assert pixels.shape == (height, width, 3)
    assert pixels.std() > 10
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20


def _count_near(pixels: np.ndarray, color: tuple[int, int, int], tolerance: int = 40) -> int:
    return int((np.abs(pixels.astype(int) - np.array(color)).max(axis=2) <= tolerance).sum())


@pytest.fixture(scope="module")
def data(dataset_factory: Callable) -> tuple[list[ImageGroundTruth], list[ImagePredictions]]:
    return dataset_factory(7, num_images=15, num_classes=3, height=80, width=96, num_preds=25)


def test_pr_curves(data: tuple, tmp_path: Path) -> None:
    result = evaluate_coco(*data, num_classes=3)
    path = plot_pr_curves(result, NAMES, tmp_path / "curves" / "pr.png")
    pixels = _read_png(path)
    _assert_drawn(pixels, 900, 600)
    assert _count_near(pixels, (31, 119, 180), 10) > 200  # the bold mean curve (tab:blue)


@pytest.mark.parametrize("metric", ["f1", "precision", "recall"])
def test_confidence_curves(data: tuple, tmp_path: Path, metric: str) -> None:
    metrics = match_for_thresholds(*data, num_classes=3).at()
    path = plot_confidence_curve(
        metrics, NAMES, tmp_path / f"{metric}.png", metric=metric, title="Box"
    )  # type: ignore[arg-type]
    _assert_drawn(_read_png(path), 900, 600)


def test_confidence_curve_rejects_unknown_metric(data: tuple, tmp_path: Path) -> None:
    metrics = match_for_thresholds(*data, num_classes=3).at([0.5])
    with pytest.raises(MetricsInputError, match="metric must be one of"):
        plot_confidence_curve(metrics, NAMES, tmp_path / "x.png", metric="map")  # type: ignore[arg-type]


@pytest.mark.parametrize("normalize", [None, "true", "predicted"])
def test_confusion_matrix_plot(data: tuple, tmp_path: Path, normalize: str | None) -> None:
    matrix = confusion_matrix(*data, num_classes=3)
    path = plot_confusion_matrix(matrix, NAMES, tmp_path / "cm", normalize=normalize)  # type: ignore[arg-type]
    assert path.name == "cm.png"
    pixels = _read_png(path)
    assert pixels.shape[0] == 600 and pixels.shape[1] == 750
    _assert_drawn(pixels, 750, 600)


def test_label_distribution(data: tuple, tmp_path: Path) -> None:
    ground_truths = [
        ImageGroundTruth(g.boxes_xyxy, g.labels, g.iscrowd, image_size=(80, 96)) for g in data[0]
    ]
    path = plot_label_distribution(ground_truths, NAMES, tmp_path / "labels.png")
    _assert_drawn(_read_png(path), 1200, 900)


def test_prediction_grid_draws_ground_truth_green_and_predictions_blue(tmp_path: Path) -> None:
    height, width = 60, 80
    images = [np.full((height, width, 3), 40, np.uint8) for _ in range(3)]
    gt_mask = np.zeros((1, height, width), bool)
    gt_mask[0, 10:40, 10:40] = True
    ground_truths = [
        ImageGroundTruth(np.array([[10, 10, 40, 40]], float), np.array([0]), masks=gt_mask),
        ImageGroundTruth(np.zeros((0, 4)), np.zeros(0), masks=np.zeros((0, height, width), bool)),
        ImageGroundTruth(
            np.array([[5, 5, 70, 50]], float),
            np.array([2]),
            masks=np.ones((1, height, width), bool),
        ),
    ]
    pred_mask = np.zeros((2, height, width), bool)
    pred_mask[0, 12:42, 12:42] = True
    predictions = [
        ImagePredictions(
            np.array([[12, 12, 42, 42], [0, 0, 5, 5]], float),
            np.array([0.9, 0.1]),
            np.array([0, 1]),
            masks=pred_mask,
        ),
        ImagePredictions(np.zeros((0, 4)), np.zeros(0), np.zeros(0)),
        ImagePredictions(np.array([[50, 30, 75, 55]], float), np.array([0.6]), np.array([1])),
    ]
    path = plot_prediction_grid(
        images, ground_truths, predictions, NAMES, tmp_path / "grid.png", titles=["a", "b", "c"]
    )
    pixels = _read_png(path)
    _assert_drawn(pixels, 800, 800)  # 2 x 2 grid of 4-inch panels at 100 dpi
    assert _count_near(pixels, GT_COLOR) > 300
    assert _count_near(pixels, PRED_COLOR) > 300
    tinted_green = (40 * 0.65, 40 * 0.65 + 200 * 0.35, 40 * 0.65)  # mask overlay on grey
    assert _count_near(pixels, tuple(int(c) for c in tinted_green), 6) > 2000


def test_prediction_grid_validates_inputs(tmp_path: Path) -> None:
    gt = ImageGroundTruth(np.zeros((0, 4)), np.zeros(0))
    pred = ImagePredictions(np.zeros((0, 4)), np.zeros(0), np.zeros(0))
    with pytest.raises(MetricsInputError, match="same non-zero number"):
        plot_prediction_grid([], [], [], NAMES, tmp_path / "g.png")
    with pytest.raises(MetricsInputError, match="RGB"):
        plot_prediction_grid(
            [np.zeros((10, 10), np.uint8)], [gt], [pred], NAMES, tmp_path / "g.png"
        )
