"""Mislabel candidates: where a confident model disagrees with the labels, the label may be the
mistake (the seed framework's "find mislabelled samples").

Two kinds, from the TIDE classification at the deployment threshold:
- "unlabelled": a confident prediction overlapping no labelled object (a background error):
  possibly an object nobody labelled;
- "relabel": a labelled object that no prediction of its class found, covered (IoU >= t_f) by a
  confident prediction of another class: possibly the wrong class in the label.

Ranked by score (relabel: score x IoU), each drawn on its image for a quick look.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from dfseg.analysis.errors.report import MislabelCandidate
from dfseg.analysis.errors.tide import BACKGROUND, CLASSIFICATION, FOUND, ErrorCases
from dfseg.metrics import ImageGroundTruth, ImagePredictions
from dfseg.runtime.images import read_image_bgr

MISLABEL_DIR = "mislabels"
_CANDIDATE_COLOR = (255, 0, 255)  # BGR magenta
_LABEL_COLOR = (80, 200, 80)


def default_min_score(confidence_threshold: float) -> float:
    """Half-way between the deployment threshold and 1: confident, by the model's own scale."""
    return round((confidence_threshold + 1.0) / 2.0, 4)


def find_mislabel_candidates(
    cases: ErrorCases,
    ground_truths: Sequence[ImageGroundTruth],
    predictions: Sequence[ImagePredictions],
    image_paths: Sequence[Path],
    class_names: Sequence[str],
    min_score: float,
    limit: int,
) -> list[MislabelCandidate]:
    """The `limit` strongest candidates (see the module docstring).

    Args:
        cases: `classify_errors` of exactly these ground truths and predictions.
        ground_truths, predictions: per image, original pixels (predictions at the threshold).
        image_paths, class_names: for the records.
        min_score: a prediction must score at least this to count as confident.
        limit: at most this many candidates.
    """
    found_gt = {
        (int(image), int(row))
        for image, row, outcome in zip(cases.gt_image, cases.gt_row, cases.gt_outcome, strict=True)
        if outcome == FOUND
    }
    scored: list[tuple[float, MislabelCandidate]] = []
    for flat in np.flatnonzero(cases.pred_score >= min_score).tolist():
        outcome = int(cases.pred_outcome[flat])
        image, row = int(cases.pred_image[flat]), int(cases.pred_row[flat])
        score, iou = float(cases.pred_score[flat]), float(cases.pred_target_iou[flat])
        target = int(cases.pred_target[flat])
        if outcome == BACKGROUND:
            kind, labelled, rank_by = "unlabelled", None, score
        elif outcome == CLASSIFICATION and (image, target) not in found_gt:
            kind, rank_by = "relabel", score * iou
            labelled = class_names[int(ground_truths[image].labels[target])]
        else:
            continue
        candidate = MislabelCandidate(
            rank=0, kind=kind, image=str(image_paths[image]),
            predicted=class_names[int(cases.pred_label[flat])], labelled=labelled,
            score=round(score, 4), iou=round(iou, 4) if kind == "relabel" else 0.0,
            box_xyxy=[round(float(v), 1) for v in predictions[image].boxes_xyxy[row]],
        )  # fmt: skip
        scored.append((rank_by, candidate))
    scored.sort(key=lambda pair: -pair[0])
    chosen = [candidate for _, candidate in scored[:limit]]
    for rank, candidate in enumerate(chosen, start=1):
        candidate.rank = rank
    return chosen


def draw_mislabel_candidates(
    candidates: Sequence[MislabelCandidate],
    ground_truths: Sequence[ImageGroundTruth],
    image_paths: Sequence[Path],
    out_dir: Path,
) -> None:
    """One picture per candidate in `out_dir` (created): the labelled boxes thin, the
    candidate's box thick with what the model saw; sets each candidate's `picture`."""
    index_of = {str(path): i for i, path in enumerate(image_paths)}
    out_dir.mkdir(parents=True, exist_ok=True)
    for candidate in candidates:
        image_index = index_of[candidate.image]
        picture = read_image_bgr(image_paths[image_index])
        line = max(2, round(max(picture.shape[:2]) / 300))
        for box in ground_truths[image_index].boxes_xyxy:
            x1, y1, x2, y2 = (round(float(v)) for v in box)
            cv2.rectangle(picture, (x1, y1), (x2, y2), _LABEL_COLOR, max(1, line // 2))
        x1, y1, x2, y2 = (round(v) for v in candidate.box_xyxy)
        cv2.rectangle(picture, (x1, y1), (x2, y2), _CANDIDATE_COLOR, line)
        text = (
            f"unlabelled? {candidate.predicted} {candidate.score:.2f}"
            if candidate.kind == "unlabelled"
            else f"labelled {candidate.labelled}, seen {candidate.predicted} {candidate.score:.2f}"
        )
        scale = max(0.4, line / 4)
        cv2.putText(picture, text, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    _CANDIDATE_COLOR, max(1, line // 2), cv2.LINE_AA)  # fmt: skip
        name = f"{candidate.rank:03d}_{candidate.kind}_{Path(candidate.image).stem}.jpg"
        cv2.imwrite(str(out_dir / name), picture)
        candidate.picture = str(out_dir / name)
