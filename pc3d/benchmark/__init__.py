"""Benchmark harness: suites register cases; ``tools/benchmark.py`` times them against baselines.

A suite is a module ``pc3d/benchmark/suite_<name>.py`` with ``SUITE = "<name>"`` and a function
``cases() -> Iterable[Case]``. Each case times pc3d's implementation and its baseline in the same run
(warm-up, repeats, median), so ratios are never compared across machines or sessions.
"""
from .harness import Case, measure_peak_rss_mb, run_case, discover_suites

__all__ = ["Case", "measure_peak_rss_mb", "run_case", "discover_suites"]
