"""Timing and peak-memory measurement shared by every benchmark suite."""
import dataclasses
import gc
import importlib
import os
import pkgutil
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional


@dataclasses.dataclass
class Case:
    """One comparison: ``impl`` and ``baseline`` are zero-argument callables doing the same work.

    ``setup`` (optional) runs once before timing and is not timed; ``check`` (optional) receives
    ``(impl_result, baseline_result)`` and raises when they disagree, so a fast wrong answer never wins.
    """

    suite: str
    name: str
    impl_name: str
    impl: Callable[[], Any]
    baseline_name: Optional[str] = None
    baseline: Optional[Callable[[], Any]] = None
    check: Optional[Callable[[Any, Any], None]] = None
    repeats: int = 7
    warmup: int = 2
    extra: Dict[str, Any] = dataclasses.field(default_factory=dict)


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


def measure_peak_rss_mb(fn: Callable[[], Any]) -> Optional[float]:
    """Peak resident memory growth (MiB) while ``fn`` runs once, or None where Linux can't tell.

    Resets the kernel's high-water mark (``/proc/self/clear_refs`` = 5), then reads ``VmHWM`` - ``VmRSS``
    before. Large tensors are mmap'd and returned on free, so this tracks the tensors a call allocates;
    small allocations that the C allocator keeps cached are under-counted.
    """
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_kb("VmRSS")
    except OSError:
        return None
    result = fn()
    peak = _status_kb("VmHWM")
    del result
    return max(0.0, (peak - before) / 1024.0)


def _time(fn: Callable[[], Any], warmup: int, repeats: int) -> List[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


def run_case(case: Case) -> Dict[str, Any]:
    """Time a case and its baseline; returns the JSON row of ``tools/benchmark.py``."""
    if case.check is not None and case.baseline is not None:
        case.check(case.impl(), case.baseline())
    impl_ms = statistics.median(_time(case.impl, case.warmup, case.repeats))
    row: Dict[str, Any] = {
        "suite": case.suite, "name": case.name, "impl": case.impl_name, "baseline": case.baseline_name,
        "median_ms": round(impl_ms, 3), "baseline_median_ms": None, "speedup": None,
        "peak_mem_mb": measure_peak_rss_mb(case.impl), "baseline_peak_mem_mb": None, "n": case.repeats,
    }
    if case.baseline is not None:
        base_ms = statistics.median(_time(case.baseline, case.warmup, case.repeats))
        row["baseline_median_ms"] = round(base_ms, 3)
        row["speedup"] = round(base_ms / impl_ms, 3) if impl_ms > 0 else None
        row["baseline_peak_mem_mb"] = measure_peak_rss_mb(case.baseline)
    for key in ("peak_mem_mb", "baseline_peak_mem_mb"):
        if row[key] is not None:
            row[key] = round(row[key], 2)
    row.update(case.extra)
    return row


def discover_suites() -> Dict[str, Callable[[], Iterable[Case]]]:
    """Map suite name -> ``cases`` function for every ``pc3d/benchmark/suite_*.py``."""
    import pc3d.benchmark as pkg

    suites = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("suite_"):
            mod = importlib.import_module(f"pc3d.benchmark.{info.name}")
            suites[mod.SUITE] = mod.cases
    return suites


def real_lidar_dir() -> Path:
    """The folder of real LiDAR scans the suites read (``*.bin``, float32 rows x, y, z, intensity, ring):
    ``$PC3D_REAL_LIDAR``, else ``$PC3D_SHARED_DIR/data/real_lidar``, else ``shared/data/real_lidar`` beside the
    checkout (where CI puts its data)."""
    if os.environ.get("PC3D_REAL_LIDAR"):
        return Path(os.environ["PC3D_REAL_LIDAR"])
    shared = os.environ.get("PC3D_SHARED_DIR")
    root = Path(shared) if shared else Path(__file__).resolve().parents[2].parent / "shared"
    return root / "data" / "real_lidar"
