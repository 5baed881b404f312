"""Error analysis of a semantic model (`dfseg errors` on a `task: semantic` run): which class is
taken for which, and the images where the model is most wrong.

Per image, the predicted class map (in original pixels, as validation scores it) is compared
with the labels: its mIoU over the classes present in either, its pixel accuracy, and its
largest confusion. The report lists the worst images (lowest image mIoU first), the split's
largest class confusions (labelled class -> predicted class, pixels and share of the labelled
class), and writes:

- `worst_images.csv`: every image, worst first;
- `confusions.csv`: every off-diagonal pair with pixels, largest first;
- `confusion_matrix.png`: the split's row-normalised pixel confusion;
- `gallery/<rank>_<image stem>.jpg` for the worst images: the labels, the prediction, and the
  wrong pixels (red) over a dimmed image.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from pydantic import BaseModel

from dfseg.analysis.split_data import SplitImages
from dfseg.analysis.tables import write_csv
from dfseg.data.semantic import IGNORE_INDEX, annotation_to_index_map
from dfseg.metrics.semantic import SemanticAccumulator, plot_semantic_confusion, semantic_confusion
from dfseg.ops.draw import draw_class_map
from dfseg.runtime.images import read_image_bgr
from dfseg.runtime.predictor import Predictor
from dfseg.structures.progress import ProgressCallback, ProgressEvent, report

GALLERY_HEIGHT = 320  # pixels of each panel


class SemanticImageErrors(BaseModel):
    """One image: `miou` over the classes labelled or predicted in it, `pixel_accuracy` over
    its labelled pixels, and its largest confusion ("road -> sidewalk", None when none)."""

    image: str
    miou: float
    pixel_accuracy: float
    wrong_pixels: int
    top_confusion: str | None
    gallery: str | None = None


class ClassConfusion(BaseModel):
    """Pixels of class `labelled` predicted as `predicted`, and their share of `labelled`."""

    labelled: str
    predicted: str
    pixels: int
    share: float


class SemanticErrorsReport(BaseModel):
    """What `dfseg errors` found for a semantic model."""

    task: str = "semantic"
    split: str
    images: int
    miou: float
    pixel_accuracy: float
    worst_images: list[SemanticImageErrors]
    confusions: list[ClassConfusion]
    out_dir: str


def analyze_semantic_errors(
    predictor: Predictor,
    split: SplitImages,
    out_dir: Path,
    worst: int = 20,
    gallery_limit: int | None = None,
    top_confusions: int = 10,
    progress: ProgressCallback | None = None,
) -> SemanticErrorsReport:
    """Predict every image of `split` and write the outputs above into `out_dir` (exists).

    Args:
        predictor: a semantic model on any backend.
        split: the images with their labels (semantic form).
        out_dir: the folder for the CSVs, the plot and the gallery.
        worst: how many of the worst images the report lists (and the gallery draws).
        gallery_limit: at most this many gallery images (None: `worst`).
        top_confusions: how many class confusions the report lists.
        progress: optional callback, one event per image.
    """
    names = predictor.class_names
    accumulator = SemanticAccumulator(len(names))
    rows: list[SemanticImageErrors] = []
    maps: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for index, annotation in enumerate(split.annotations):
        (detections,) = predictor.predict_arrays([read_image_bgr(annotation.image_path)])
        if detections.class_map is None:
            raise ValueError(f"{predictor.backend.path} is not a semantic model")
        predicted, labelled = detections.class_map, annotation_to_index_map(annotation)
        confusion = semantic_confusion(predicted, labelled, len(names))
        accumulator.update(predicted, labelled)
        rows.append(_image_row(str(annotation.image_path), confusion, names))
        maps[str(annotation.image_path)] = (predicted, labelled)
        if len(maps) > 4 * max(worst, 1):  # keep memory bounded: drop the best so far
            keep = {row.image for row in sorted(rows, key=_badness)[: 2 * max(worst, 1)]}
            maps = {key: value for key, value in maps.items() if key in keep}
        report(progress, ProgressEvent("errors", index + 1, len(split.annotations)))
    ranked = sorted(rows, key=_badness)
    semantic = accumulator.report(names)
    plot_semantic_confusion(semantic, out_dir / "confusion_matrix.png")
    limit = worst if gallery_limit is None else min(worst, gallery_limit)
    for rank, row in enumerate(ranked[:limit], start=1):
        if row.image in maps:
            row.gallery = str(
                _draw(out_dir / "gallery", rank, Path(row.image), *maps[row.image], names)
            )
    confusions = _confusions(semantic.confusion_array(), names)
    write_csv(
        out_dir / "worst_images.csv",
        ["image", "miou", "pixel_accuracy", "wrong_pixels", "top_confusion"],
        [row.model_dump(exclude={"gallery"}) for row in ranked],
    )
    write_csv(
        out_dir / "confusions.csv",
        ["labelled", "predicted", "pixels", "share"],
        [c.model_dump() for c in confusions],
    )
    return SemanticErrorsReport(
        split=split.name,
        images=len(rows),
        miou=semantic.miou,
        pixel_accuracy=semantic.pixel_accuracy,
        worst_images=ranked[:worst],
        confusions=confusions[:top_confusions],
        out_dir=str(out_dir),
    )


def _badness(row: SemanticImageErrors) -> tuple[float, int]:
    return (row.miou, -row.wrong_pixels)


def _image_row(image: str, confusion: np.ndarray, names: Sequence[str]) -> SemanticImageErrors:
    correct = np.diag(confusion).astype(np.float64)
    labelled, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
    union = labelled + predicted - correct
    present = union > 0
    miou = float((correct[present] / union[present]).mean()) if present.any() else 1.0
    total = int(labelled.sum())
    off = confusion.copy()
    np.fill_diagonal(off, 0)
    top = None
    if off.max() > 0:
        row, column = (int(v) for v in np.unravel_index(int(off.argmax()), off.shape))
        top = f"{names[row]} -> {names[column]}"
    return SemanticImageErrors(
        image=image,
        miou=round(miou, 5),
        pixel_accuracy=round(float(correct.sum() / total), 5) if total else 1.0,
        wrong_pixels=int(off.sum()),
        top_confusion=top,
    )


def _confusions(confusion: np.ndarray, names: Sequence[str]) -> list[ClassConfusion]:
    labelled = confusion.sum(axis=1)
    pairs = [
        ClassConfusion(
            labelled=names[i],
            predicted=names[j],
            pixels=int(confusion[i, j]),
            share=round(float(confusion[i, j] / labelled[i]), 5),
        )
        for i in range(len(names))
        for j in range(len(names))
        if i != j and confusion[i, j] > 0
    ]
    return sorted(pairs, key=lambda pair: -pair.pixels)


def _draw(
    folder: Path,
    rank: int,
    image_path: Path,
    predicted: np.ndarray,
    labelled: np.ndarray,
    names: Sequence[str],
) -> Path:
    """Labels | prediction | wrong pixels in red, each `GALLERY_HEIGHT` high."""
    image = read_image_bgr(image_path)
    shown_labels = np.where(labelled == IGNORE_INDEX, len(names), labelled)  # ignored: untinted
    wrong = (predicted != labelled) & (labelled != IGNORE_INDEX)
    errors = (image * 0.4).astype(np.uint8)
    errors[wrong] = (40, 40, 230)
    panels = [
        draw_class_map(image, shown_labels, names),
        draw_class_map(image, predicted, names),
        errors,
    ]
    height, width = image.shape[:2]
    size = (max(1, round(width * GALLERY_HEIGHT / height)), GALLERY_HEIGHT)
    row = np.hstack([cv2.resize(panel, size, interpolation=cv2.INTER_AREA) for panel in panels])
    for column, title in enumerate(("labels", "prediction", "wrong pixels")):
        cv2.putText(row, title, (column * size[0] + 6, GALLERY_HEIGHT - 8),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{rank:03d}_{image_path.stem}.jpg"
    cv2.imwrite(str(target), row)
    return target
