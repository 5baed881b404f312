"""`dfseg bench`: accuracy and latency of a run's checkpoint and every export, against torch FP32.

    targets.py  what runs: the checkpoint and each export, per device and OpenVINO precision
    run.py      `bench_run` / `run_bench`: evaluate and time every target
    report.py   the report models and bench.csv
    plot.py     latency against accuracy
"""

from dfseg.analysis.bench.report import BenchReport, BenchRow
from dfseg.analysis.bench.run import BenchSettings, bench_run, bench_settings, run_bench
from dfseg.analysis.bench.targets import BenchTarget, find_bench_targets

__all__ = [
    "BenchReport",
    "BenchRow",
    "BenchSettings",
    "BenchTarget",
    "bench_run",
    "bench_settings",
    "find_bench_targets",
    "run_bench",
]
