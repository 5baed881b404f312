"""Evaluation metrics shared by training and analysis: COCO mAP, P/R/F1, confusion matrices.

Plots live in `dfseg.metrics.plots` (imported on demand: it pulls in matplotlib).
"""

from dfseg.metrics.coco import evaluate_coco
from dfseg.metrics.coco_result import SUMMARY_NAMES, CocoParams, CocoResult
from dfseg.metrics.collect import FlatProblem, flatten
from dfseg.metrics.confusion import ConfusionMatrix, confusion_matrix
from dfseg.metrics.errors import MetricsInputError
from dfseg.metrics.inputs import ImageGroundTruth, ImagePredictions
from dfseg.metrics.iou import box_iou_coco, image_iou, mask_iou_coco
from dfseg.metrics.matching import CandidatePairs, MatchResult, greedy_match
from dfseg.metrics.report import ClassRow, EvalReport, GroupMetrics, build_eval_report
from dfseg.metrics.thresholds import (
    BestThreshold,
    ConfidenceMatches,
    Rates,
    ThresholdMetrics,
    best_threshold,
    match_for_thresholds,
)

__all__ = [
    "SUMMARY_NAMES",
    "BestThreshold",
    "CandidatePairs",
    "ClassRow",
    "CocoParams",
    "CocoResult",
    "ConfidenceMatches",
    "ConfusionMatrix",
    "EvalReport",
    "FlatProblem",
    "GroupMetrics",
    "ImageGroundTruth",
    "ImagePredictions",
    "MatchResult",
    "MetricsInputError",
    "Rates",
    "ThresholdMetrics",
    "best_threshold",
    "box_iou_coco",
    "build_eval_report",
    "confusion_matrix",
    "evaluate_coco",
    "flatten",
    "greedy_match",
    "image_iou",
    "mask_iou_coco",
    "match_for_thresholds",
]
