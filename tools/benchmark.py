"""Speed and memory of pc3d against baselines measured in the same run.

Usage: python tools/benchmark.py [--suite NAME ...] [--threads 2] [--out FILE.json] [--quick]

Prints a table and writes JSON:
``{"machine": {...}, "results": [{"suite", "name", "impl", "baseline", "median_ms",
"baseline_median_ms", "speedup", "peak_mem_mb", "baseline_peak_mem_mb", "n", ...}]}``.
Suites live in ``pc3d/benchmark/suite_<name>.py``.
"""
import argparse
import json
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def machine_info(threads: int) -> dict:
    import torch

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch_threads": threads, "torch": torch.__version__,
            "python": platform.python_version()}


def print_table(rows) -> None:
    head = f"{'suite':<10} {'case':<44} {'impl':<22} {'ms':>9} {'baseline':<24} {'base ms':>9} {'x':>7} {'MiB':>8} {'base MiB':>8}"
    print(head)
    print("-" * len(head))
    def fmt(value, spec: str) -> str:
        # spec is ">W.Pf"; a missing value (no baseline, no memory reading) prints "-" in the same width.
        if isinstance(value, (int, float)):
            return format(value, spec)
        return format("-", spec.split(".")[0])

    for r in rows:
        print(f"{r['suite']:<10} {r['name'][:44]:<44} {str(r['impl'])[:22]:<22} {r['median_ms']:>9.2f} "
              f"{str(r['baseline'] or '-')[:24]:<24} {fmt(r['baseline_median_ms'], '>9.2f')} {fmt(r['speedup'], '>7.2f')} "
              f"{fmt(r['peak_mem_mb'], '>8.1f')} {fmt(r.get('baseline_peak_mem_mb'), '>8.1f')}")


def main(argv=None) -> int:
    from pc3d.benchmark import discover_suites, run_case

    suites = discover_suites()
    ap = argparse.ArgumentParser(description="pc3d benchmarks (ratios against same-run baselines)")
    ap.add_argument("--suite", nargs="*", choices=sorted(suites), help="suites to run (default: all)")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    ap.add_argument("--out", help="write the JSON here")
    ap.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    rows = []
    for name in args.suite or sorted(suites):
        for case in suites[name]():
            if args.quick:
                case.repeats, case.warmup = 2, 1
            print(f"[{name}] {case.name} ...", file=sys.stderr, flush=True)
            rows.append(run_case(case))
    print_table(rows)
    out = {"machine": machine_info(args.threads), "results": rows}
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(out, f, indent=2)
        os.replace(tmp, args.out)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
