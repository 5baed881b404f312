"""`compare_models`: two models (runs or artifacts) on the same split, side by side.

Each model is evaluated at its own tuned threshold: per-class mAP50-95 and F1 (boxes, and masks
when both segment), TIDE error counts, and batch-1 latency. Images where one model makes no
mistake at its threshold and the other does are listed (most errors first) and drawn side by
side: model A left, model B right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict

from dfseg.analysis.errors.analyze import above_threshold
from dfseg.analysis.errors.gallery import image_error_counts
from dfseg.analysis.errors.tide import DEFAULT_BACKGROUND_THRESHOLD, ERROR_TYPES, classify_errors
from dfseg.analysis.latency import measure_latency
from dfseg.analysis.predict import predict_for_evaluation
from dfseg.analysis.split_data import SplitImages
from dfseg.metrics import ImageGroundTruth, ImagePredictions, build_eval_report
from dfseg.metrics.iou import IouType
from dfseg.metrics.report import ClassRow, EvalReport, GroupMetrics
from dfseg.ops.draw import draw_detections
from dfseg.ops.masks import CocoRLE, rle_to_mask
from dfseg.runtime.images import read_image_bgr
from dfseg.runtime.predictor import Predictor, load_predictor
from dfseg.structures.progress import ProgressCallback

LATENCY_WARMUP = 2
LATENCY_RUNS = 20
GALLERY_DIR = "gallery"


class ModelSide(BaseModel):
    """One model's results on the split.

    Attributes:
        artifact, backend: what ran.
        threshold: its tuned threshold, at which F1 and errors are counted.
        box_map50_95, box_f1 (mask_* for segmentation): over all classes.
        errors: TIDE error type -> count at the threshold.
        latency_ms: median batch-1 milliseconds per image, end to end.
    """

    model_config = ConfigDict(ser_json_inf_nan="strings")

    artifact: str
    backend: str
    threshold: float
    box_map50_95: float
    box_f1: float
    mask_map50_95: float | None = None
    mask_f1: float | None = None
    errors: dict[str, int]
    latency_ms: float


class ClassComparison(BaseModel):
    """One class: A's and B's mAP50-95 and F1 (masks when both segment, else boxes)."""

    model_config = ConfigDict(ser_json_inf_nan="strings")

    name: str
    instances: int
    a_map50_95: float
    b_map50_95: float
    a_f1: float
    b_f1: float


class ImageComparison(BaseModel):
    """An image one model gets right (no error at its threshold) and the other does not."""

    image: str
    a_errors: int
    b_errors: int
    picture: str | None = None


class CompareReport(BaseModel):
    """What `dfseg compare` found; deltas are B minus A."""

    model_config = ConfigDict(ser_json_inf_nan="strings")

    split: str
    images: int
    metric: str
    a: ModelSide
    b: ModelSide
    classes: list[ClassComparison]
    only_a_right: list[ImageComparison]
    only_b_right: list[ImageComparison]
    out_dir: str


def compare_models(
    artifact_a: Path,
    artifact_b: Path,
    split: SplitImages,
    out_dir: Path,
    threads: int | None = None,
    limit: int = 20,
    progress: ProgressCallback | None = None,
) -> CompareReport:
    """Evaluate both models on `split` and write the side-by-side gallery into `out_dir`.

    Args:
        artifact_a, artifact_b: best.pt files, exported models or run folders.
        split: images and ground truth (both models must know its classes).
        out_dir: an existing folder for the gallery.
        threads: CPU inference threads per model.
        limit: images listed and drawn per direction.
        progress: optional callback.
    """
    artifacts = (artifact_a, artifact_b)
    predictors = [load_predictor(a, threads=threads) for a in artifacts]
    masks = all(p.task == "segment" for p in predictors) and any(
        gt.known_masks.any() for gt in split.ground_truths
    )
    iou_type: IouType = "segm" if masks else "bbox"
    evaluated = [gt.for_iou_type(iou_type) for gt in split.ground_truths]
    runs = [_evaluate(p, split, evaluated, iou_type, progress) for p in predictors]
    sides = [_side(a, p, run) for a, p, run in zip(artifacts, predictors, runs, strict=True)]
    group = "mask" if masks else "box"
    classes = [
        ClassComparison(
            name=row_a.name, instances=row_a.instances,
            a_map50_95=_group(row_a, group).map50_95, b_map50_95=_group(row_b, group).map50_95,
            a_f1=_group(row_a, group).f1, b_f1=_group(row_b, group).f1,
        )
        for row_a, row_b in zip(runs[0].report.classes, runs[1].report.classes, strict=True)
    ]  # fmt: skip
    gallery = _Gallery(split, evaluated, runs, (_short(artifact_a), _short(artifact_b)), out_dir)
    errors_a, errors_b = runs[0].image_errors, runs[1].image_errors
    return CompareReport(
        split=split.name, images=len(split.image_paths),
        metric=f"{group} mAP50-95 / F1", a=sides[0], b=sides[1], classes=classes,
        only_a_right=gallery.draw("only_a_right", _one_sided(errors_a, errors_b, limit)),
        only_b_right=gallery.draw("only_b_right", _one_sided(errors_b, errors_a, limit)),
        out_dir=str(out_dir),
    )  # fmt: skip


@dataclass
class _Evaluated:
    """One model's predictions at its threshold, its report and error cases."""

    shown: list[ImagePredictions]
    report: EvalReport
    counts: dict[str, int]
    image_errors: np.ndarray  # [I] errors per image at the threshold


def _evaluate(
    predictor: Predictor,
    split: SplitImages,
    evaluated: list[ImageGroundTruth],
    iou_type: IouType,
    progress: ProgressCallback | None,
) -> _Evaluated:
    threshold = predictor.manifest.threshold
    predictions = predict_for_evaluation(predictor, split.image_paths, progress)
    report = build_eval_report(split.ground_truths, predictions, split.class_names, threshold)
    shown = [above_threshold(prediction, threshold) for prediction in predictions]
    cases = classify_errors(
        evaluated, shown, iou_type, 0.5, DEFAULT_BACKGROUND_THRESHOLD, len(split.class_names)
    )
    per_image = image_error_counts(cases, len(split.image_paths)).sum(axis=1)
    return _Evaluated(shown, report, cases.counts(), per_image)


class _Gallery:
    """Side-by-side pictures of chosen images."""

    def __init__(
        self,
        split: SplitImages,
        evaluated: list[ImageGroundTruth],
        runs: list[_Evaluated],
        names: tuple[str, str],
        out_dir: Path,
    ) -> None:
        self.split, self.evaluated, self.runs = split, evaluated, runs
        self.names, self.out_dir = names, out_dir

    def draw(self, direction: str, indices: list[int]) -> list[ImageComparison]:
        entries = []
        for index in indices:
            path = self.split.image_paths[index]
            entry = ImageComparison(
                image=str(path),
                a_errors=int(self.runs[0].image_errors[index]),
                b_errors=int(self.runs[1].image_errors[index]),
            )
            target = self.out_dir / GALLERY_DIR / direction / f"{index:05d}_{path.stem}.jpg"
            shown = [run.shown[index] for run in self.runs]
            _draw_pair(path, shown, self.evaluated[index], self.split.class_names, self.names,
                       entry, target)  # fmt: skip
            entries.append(entry)
        return entries


def _group(row: ClassRow, group: str) -> GroupMetrics:
    metrics = row.mask if group == "mask" else row.box
    assert metrics is not None  # "mask" only when both models segment
    return metrics


def _side(artifact: Path, predictor: Predictor, run: _Evaluated) -> ModelSide:
    overall, errors = run.report.overall, run.counts
    return ModelSide(
        artifact=str(artifact), backend=predictor.backend.name,
        threshold=round(float(predictor.manifest.threshold), 4),
        box_map50_95=overall.box.map50_95, box_f1=overall.box.f1,
        mask_map50_95=None if overall.mask is None else overall.mask.map50_95,
        mask_f1=None if overall.mask is None else overall.mask.f1,
        errors={t: int(errors.get(t, 0)) for t in ERROR_TYPES},
        latency_ms=round(batch1_latency_ms(predictor), 2),
    )  # fmt: skip


def batch1_latency_ms(predictor: Predictor) -> float:
    """Median batch-1 milliseconds per image, end to end, on a mid-grey frame of the model's
    input size (`dfseg.analysis.latency.measure_latency`)."""
    height, width = predictor.manifest.preprocessing.input_size
    frame = np.full((height, width, 3), 114, np.uint8)
    return (
        measure_latency(predictor, [frame], LATENCY_WARMUP, LATENCY_RUNS).stages["total"].median_ms
    )


def _one_sided(right: np.ndarray, wrong: np.ndarray, limit: int) -> list[int]:
    """Images with no error in `right` and some in `wrong`, most errors first."""
    candidates = np.flatnonzero((right == 0) & (wrong > 0))
    order = candidates[np.argsort(-wrong[candidates], kind="stable")]
    return [int(i) for i in order[:limit]]


def _short(artifact: Path) -> str:
    path = Path(artifact)
    return f"{path.parent.name}/{path.name}" if path.suffix else path.name


def _draw_pair(
    image_path: Path,
    predictions: Sequence[ImagePredictions],
    ground_truth: ImageGroundTruth,
    class_names: Sequence[str],
    names: tuple[str, str],
    entry: ImageComparison,
    target: Path,
) -> None:
    """A's predictions left, B's right, labelled boxes thin green on both."""
    image = read_image_bgr(image_path)
    halves = []
    for side, prediction, name, count in zip(
        "AB", predictions, names, (entry.a_errors, entry.b_errors), strict=True
    ):
        masks = None
        if prediction.masks is not None and len(prediction):
            masks = np.stack([rle_to_mask(cast(CocoRLE, r)).astype(bool) for r in prediction.rles])
        drawn = draw_detections(image, prediction.boxes_xyxy, prediction.scores, prediction.labels,
                                class_names, masks)  # fmt: skip
        for box in ground_truth.boxes_xyxy:
            x1, y1, x2, y2 = (round(float(v)) for v in box)
            cv2.rectangle(drawn, (x1, y1), (x2, y2), (80, 200, 80), 1)
        banner = np.full((28, drawn.shape[1], 3), 32, np.uint8)
        cv2.putText(banner, f"{side}: {name} - {count} errors", (6, 20), cv2.FONT_HERSHEY_SIMPLEX,
                    0.55, (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
        halves.append(np.vstack([banner, drawn]))
    target.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(target), np.hstack(halves))
    entry.picture = str(target)
