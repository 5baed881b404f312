"""Error analysis (`dfseg errors`): TIDE error types and their dAP, the worst images, a gallery.

    tide.py      classifying each false positive and negative (TIDE's six types)
    tide_fix.py  fixing one type at a time and re-evaluating AP (dAP)
    analyze.py   `analyze_errors`: both, for boxes and masks, plus the outputs
    run.py       `run_error_analysis`: predict a split with a model, then analyze
    report.py    the report models and options
    gallery.py, rows.py, plot.py   the gallery, errors.csv and the summary plot
"""

from dfseg.analysis.errors.analyze import analyze_errors
from dfseg.analysis.errors.report import ErrorGroup, ErrorSettings, ErrorsReport, ErrorTypeRow
from dfseg.analysis.errors.run import run_error_analysis
from dfseg.analysis.errors.tide import ERROR_TYPES, ErrorCases, classify_errors
from dfseg.analysis.errors.tide_fix import ApDeltas, error_ap_deltas

__all__ = [
    "ERROR_TYPES",
    "ApDeltas",
    "ErrorCases",
    "ErrorGroup",
    "ErrorSettings",
    "ErrorTypeRow",
    "ErrorsReport",
    "analyze_errors",
    "classify_errors",
    "error_ap_deltas",
    "run_error_analysis",
]
