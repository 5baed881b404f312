"""Analysis of trained and exported models; every entry point returns a report object.

- `bench` (`bench_run`, `run_bench`): accuracy and latency of every artifact of a run against
  torch FP32.
- `errors` (`run_error_analysis`, `analyze_errors`): TIDE error types, dAP, worst images, error
  gallery; `classify_errors`, `error_ap_deltas`: the TIDE core, on ground truth and predictions.
- `quantize` (`quantize_run`): OpenVINO INT8 with NNCF, validated against FP32.
- `batching` (`run_batching`): throughput per batch size and a batched-equals-batch-1 check.
- `predict` (`predict_for_evaluation`): the one way a model is run over a split for metrics.
"""

from dfseg.analysis.batching import BatchingReport, run_batching
from dfseg.analysis.bench import BenchReport, BenchSettings, bench_run, run_bench
from dfseg.analysis.errors import (
    ERROR_TYPES,
    ApDeltas,
    ErrorCases,
    ErrorSettings,
    ErrorsReport,
    analyze_errors,
    classify_errors,
    error_ap_deltas,
    run_error_analysis,
)
from dfseg.analysis.exceptions import AnalysisError
from dfseg.analysis.split_data import SplitImages, load_split_images, split_images_for

__all__ = [
    "ERROR_TYPES",
    "AnalysisError",
    "ApDeltas",
    "BatchingReport",
    "BenchReport",
    "BenchSettings",
    "ErrorCases",
    "ErrorSettings",
    "ErrorsReport",
    "SplitImages",
    "analyze_errors",
    "bench_run",
    "classify_errors",
    "error_ap_deltas",
    "load_split_images",
    "run_batching",
    "run_bench",
    "run_error_analysis",
    "split_images_for",
]
