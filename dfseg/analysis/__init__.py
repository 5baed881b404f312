"""Analysis of trained and exported models; every entry point returns a report object.

- `run_bench`: accuracy and latency of every artifact of a run against torch FP32.
- `run_error_analysis` / `analyze_errors`: TIDE error types, dAP, worst images, error gallery.
- `run_batching`: throughput per batch size and a batched-equals-batch-1 check.
- `classify_errors`, `error_ap_deltas`: the TIDE core, on ground truth and predictions only.
"""

from dfseg.analysis.batching import BatchingReport, run_batching
from dfseg.analysis.bench import BenchSettings, run_bench
from dfseg.analysis.bench_report import BenchReport
from dfseg.analysis.error_analysis import run_error_analysis
from dfseg.analysis.error_report import ErrorSettings, ErrorsReport, analyze_errors
from dfseg.analysis.exceptions import AnalysisError
from dfseg.analysis.split_data import SplitImages, load_split_images
from dfseg.analysis.tide import ERROR_TYPES, ErrorCases, classify_errors
from dfseg.analysis.tide_fix import ApDeltas, error_ap_deltas

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
    "classify_errors",
    "error_ap_deltas",
    "load_split_images",
    "run_batching",
    "run_bench",
    "run_error_analysis",
]
