#!/usr/bin/env python
"""Compare detectors' Waymo AP on the same frames, with frame-bootstrap intervals.

Each input is a detections file written during evaluation:

    python tools/test.py CONFIG CKPT --cfg-options test_evaluator.dump_file=work_dirs/a.npz
    python tools/compare_detections.py baseline=work_dirs/a.npz transformer=work_dirs/b.npz [--samples 1000]

prints every run's LEVEL_1 AP / APH per class with its interval, and each later run's difference from the
first one, with the interval of the difference and the share of resamples in which the later run is at
least as good (the frames are resampled together for all runs: ``pc3d.evaluation.bootstrap``).
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's pc3d first


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="NAME=PATH.npz (or PATH.npz, named by its stem); the first is the reference")
    p.add_argument("--samples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the resampling")
    p.add_argument("--level", type=int, choices=(1, 2), default=1, help="Waymo difficulty level (default 1)")
    p.add_argument("--confidence", type=float, default=0.95, help="interval coverage (default 0.95)")
    p.add_argument("--by-sequence", action="store_true",
                   help="resample whole sequences, taken from frame ids '<sequence>_<index>' (Waymo's), not frames")
    p.add_argument("--json", help="also write the whole summary here")
    args = p.parse_args(argv)
    if args.samples < 1:
        p.error(f"--samples must be >= 1, got {args.samples}")
    if not 0.0 < args.confidence < 1.0:
        p.error(f"--confidence must be in (0, 1), got {args.confidence}")
    return args


def _named(spec):
    name, sep, path = spec.partition("=")
    return (name, Path(path)) if sep else (Path(spec).stem, Path(spec))


def format_summary(summary) -> str:
    """Text table of a ``compare_runs`` result."""
    names = list(summary["runs"])
    metrics = list(summary["runs"][names[0]])
    pct = round(100 * summary["confidence"])
    width = max(len(n) for n in names) + 2
    lines = [f"LEVEL_{summary['level']}, {summary['num_frames']} frames, {summary['num_samples']} resamples, "
             f"{pct}% intervals"]
    lines.append(f"{'run':<{width}}" + "".join(f"{m:>26}" for m in metrics))
    for n in names:
        lines.append(f"{n:<{width}}" + "".join(
            f"{r['value']:>8.4f} [{r['interval'][0]:.4f}, {r['interval'][1]:.4f}]"
            for r in summary["runs"][n].values()))
    for n in names[1:]:
        lines.append(f"{n} - {names[0]}:")
        for m, d in summary["differences"][n].items():
            lines.append(f"  {m:<16}{d['value']:+.4f} [{d['interval'][0]:+.4f}, {d['interval'][1]:+.4f}]  "
                         f"P(>= {names[0]}) {d['p_at_least']:.3f}")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    from pc3d.evaluation.bootstrap import compare_runs
    from pc3d.evaluation.detections_io import load_detections

    runs = {}
    for spec in args.runs:
        name, path = _named(spec)
        if name in runs:
            raise SystemExit(f"run name '{name}' given twice (name them: NAME=PATH.npz)")
        runs[name] = load_detections(path)
    first = next(iter(runs.values()))
    groups = [str(f["frame_id"]).rsplit("_", 1)[0] for f in first] if args.by_sequence else None
    summary = compare_runs(runs, num_samples=args.samples, seed=args.seed, level=args.level,
                           confidence=args.confidence, groups=groups)
    print(format_summary(summary))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
