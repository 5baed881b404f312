"""What `dfseg errors` reports (pydantic models; the CLI renders them, `--json` dumps them) and
the options of the analysis. Kept apart from the analysis and its plots, which both use them."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from dfseg.analysis.errors.tide import DEFAULT_BACKGROUND_THRESHOLD
from dfseg.analysis.errors.tide_fix import DapMetric


class ErrorTypeRow(BaseModel):
    """One TIDE error type: how often it occurs at the threshold and what it costs in AP."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    error_type: str
    count: int
    dap: float


class ErrorGroup(BaseModel):
    """The error breakdown of boxes ("bbox") or masks ("segm")."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    iou_type: str
    metric: DapMetric
    ap: float
    rows: list[ErrorTypeRow]
    false_positives_dap: float
    false_negatives_dap: float


class ImageErrors(BaseModel):
    """Errors of one image at the threshold (many errors often means a labelling mistake)."""

    model_config = ConfigDict(extra="forbid")

    image: str
    errors: int
    counts: dict[str, int]


class MislabelCandidate(BaseModel):
    """One place where the labels may be wrong.

    Attributes:
        rank: 1 = most confident.
        kind: "unlabelled" or "relabel".
        image: the image file.
        predicted: class the model saw; labelled: the label's class (relabel only).
        score: the prediction's score; iou: overlap with the labelled object (relabel only).
        box_xyxy: the prediction's box in original pixels.
        picture: the drawing of it, when written.
    """

    rank: int
    kind: str
    image: str
    predicted: str
    labelled: str | None
    score: float
    iou: float
    box_xyxy: list[float]
    picture: str | None = None


class ErrorsReport(BaseModel):
    """What `dfseg errors` found.

    Attributes:
        split: the evaluated split; images: how many.
        confidence_threshold: predictions below it are not counted, drawn or listed.
        iou_threshold, background_threshold: TIDE's t_f and t_b.
        groups: per iou type (boxes first), the error types with count and dAP.
        gallery_iou_type: which overlap the gallery, CSV and worst images are based on (masks
            for a segmentation model).
        worst_images: images with the most errors, most first.
        out_dir: the folder with errors.csv, the plot and the gallery.
        gallery_images: pictures written.
        mislabel_min_score: the score a prediction needed to make a mislabel candidate.
        mislabel_candidates: where the labels may be wrong, most confident first.
    """

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    split: str
    images: int
    confidence_threshold: float
    iou_threshold: float
    background_threshold: float
    groups: list[ErrorGroup]
    gallery_iou_type: str
    worst_images: list[ImageErrors]
    out_dir: str
    gallery_images: int
    mislabel_min_score: float = 0.0
    mislabel_candidates: list[MislabelCandidate] = []


@dataclass(frozen=True)
class ErrorSettings:
    """Options of the error analysis.

    Attributes:
        confidence_threshold: deployment threshold; None: the model's tuned one (resolved by
            `run_error_analysis`; `analyze_errors` needs a number).
        iou_threshold: t_f for counts and gallery (dAP for AP50-95 re-classifies per threshold).
        background_threshold: t_b.
        dap_metric: "ap50" or "ap50_95".
        worst_images: length of the worst-images list.
        gallery_limit: at most this many gallery images (most errors first); None: all.
        mislabel_score: a prediction this confident that disagrees with the labels is a
            mislabel candidate; None: half-way between the threshold and 1.
        mislabel_limit: at most this many candidates.
    """

    confidence_threshold: float | None = None
    iou_threshold: float = 0.5
    background_threshold: float = DEFAULT_BACKGROUND_THRESHOLD
    dap_metric: DapMetric = "ap50"
    worst_images: int = 20
    gallery_limit: int | None = None
    mislabel_score: float | None = None
    mislabel_limit: int = 50
