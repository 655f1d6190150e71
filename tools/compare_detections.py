#!/usr/bin/env python
"""Compare detectors' Waymo AP on the same frames, with frame-bootstrap intervals.

Each input is a detections file written during evaluation:

    python tools/test.py CONFIG CKPT --cfg-options test_evaluator.dump_file=work_dirs/a.npz
    python tools/compare_detections.py baseline=work_dirs/a.npz transformer=work_dirs/b.npz [--samples 1000]

prints every run's LEVEL_1 AP / APH per class with its interval, and each later run's difference from the
first one, with the interval of the difference and the share of resamples in which the later run is at
least as good (the frames are resampled together for all runs: ``pc3d.evaluation.bootstrap``).

A model trained with several seeds is one argument with its runs joined by commas; it is compared by the
mean over its runs, with a second interval that also redraws the runs (``compare_models``):

    python tools/compare_detections.py spconv=s0.npz,s1.npz,s2.npz flatformer=f0.npz,f1.npz,f2.npz
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's pc3d first


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="NAME=PATH.npz (or PATH.npz, named by its stem), or NAME=A.npz,B.npz,... "
                   "for a model's several runs (seeds); the first is the reference")
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
    """'NAME=A.npz,B.npz' -> ('NAME', [A, B]); a lone path is named by its stem."""
    name, sep, paths = spec.partition("=")
    if not sep:
        name, paths = Path(spec).stem, spec
        if "," in spec:
            raise SystemExit(f"'{spec}': name a model of several runs: NAME=A.npz,B.npz")
    paths = paths.split(",")
    if not name or not all(paths):
        raise SystemExit(f"'{spec}': expected NAME=PATH.npz[,PATH.npz...]")
    return name, [Path(p) for p in paths]


def format_summary(summary) -> str:
    """Text table of a ``compare_models`` / ``compare_runs`` result."""
    names = list(summary["runs"])
    metrics = list(summary["runs"][names[0]])
    pct = round(100 * summary["confidence"])
    num_runs = summary["num_runs"]
    seeds = any(k > 1 for k in num_runs.values())
    labels = {n: f"{n} ({num_runs[n]} runs)" if num_runs[n] > 1 else n for n in names}
    width = max(len(s) for s in labels.values()) + 2
    lines = [f"LEVEL_{summary['level']}, {summary['num_frames']} frames, {summary['num_samples']} resamples, "
             f"{pct}% intervals" + (" over frames; 'seeds': frames and runs redrawn; a model is its runs' mean"
                                    if seeds else "")]
    lines.append(f"{'run':<{width}}" + "".join(f"{m:>26}" for m in metrics))
    for n in names:
        lines.append(f"{labels[n]:<{width}}" + "".join(
            f"{r['value']:>8.4f} [{r['interval'][0]:.4f}, {r['interval'][1]:.4f}]"
            for r in summary["runs"][n].values()))
        if num_runs[n] > 1:
            lines.append(f"{'  seeds':<{width}}" + "".join(
                f"{'':>8} [{r['interval_seeds'][0]:.4f}, {r['interval_seeds'][1]:.4f}]"
                for r in summary["runs"][n].values()))
            for i in range(num_runs[n]):
                lines.append(f"{f'  run {i}':<{width}}" + "".join(
                    f"{r['per_run'][i]:>8.4f}{'':>18}" for r in summary["runs"][n].values()))
    for n in names[1:]:
        lines.append(f"{n} - {names[0]}:")
        for m, d in summary["differences"][n].items():
            line = (f"  {m:<16}{d['value']:+.4f} [{d['interval'][0]:+.4f}, {d['interval'][1]:+.4f}]  "
                    f"P(>= {names[0]}) {d['p_at_least']:.3f}")
            if seeds:
                line += (f"   seeds [{d['interval_seeds'][0]:+.4f}, {d['interval_seeds'][1]:+.4f}]  "
                         f"P {d['p_at_least_seeds']:.3f}")
            lines.append(line)
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    from pc3d.evaluation.bootstrap import compare_models
    from pc3d.evaluation.detections_io import load_detections

    models = {}
    for spec in args.runs:
        name, paths = _named(spec)
        if name in models:
            raise SystemExit(f"run name '{name}' given twice (name them: NAME=PATH.npz)")
        models[name] = [load_detections(p) for p in paths]
    first = next(iter(models.values()))[0]
    groups = [str(f["frame_id"]).rsplit("_", 1)[0] for f in first] if args.by_sequence else None
    summary = compare_models(models, num_samples=args.samples, seed=args.seed, level=args.level,
                             confidence=args.confidence, groups=groups)
    print(format_summary(summary))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
