#!/usr/bin/env python
"""Export a detector from points to boxes: a torch.export program and, with --aoti, an AOTInductor CPU package.

    python tools/export.py CONFIG CHECKPOINT OUT [--aoti] [--example SCAN.bin] [--fuse-conv-bn]
        [--repeats 3] [--threads N]

CHECKPOINT is a pc3d checkpoint (tools/convert_checkpoint.py makes one from an official checkpoint), or `none` for
the config's initial weights (latency only). OUT is a folder; it gets

* ``program.pt2``: ``torch.export.save`` of the program; run it with
  ``torch.export.load(path).module()(points)`` after ``import pc3d.ops`` (the ops and their fake kernels);
* ``detector_aoti.pt2`` (``--aoti``): the AOTInductor package; run it with ``pc3d.apis.export.load_aoti(path)``,
  which needs torch and pc3d's compiled op library only;
* ``export.json``: what was exported (config, input columns, classes, ops in the graph) and, on the example scan,
  the outputs' largest difference to eager, the share of eager's boxes each path also returns (within 1e-3) and
  the latencies (median of --repeats) of eager, the exported program
  and the AOTI package. When the package fails on the example (``aoti_error``), the exit status is 1.

The program takes one scan ``points (N, C)`` float32 (C = the model's input columns, no batch column) and
returns ``boxes (K, 7)``, ``scores (K,)``, ``labels (K,)``. The example scan only drives the trace: any N works
afterwards. Without --example a simulated 150k-point Waymo-like frame is used.
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's pc3d first


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("config", help="detector config (.py)")
    p.add_argument("checkpoint", help="pc3d checkpoint (.pth), or 'none' for the config's initial weights")
    p.add_argument("out", help="output folder")
    p.add_argument("--aoti", action="store_true", help="also compile an AOTInductor CPU package")
    p.add_argument("--example", help="(N, C) float32 .bin scan to trace with (default: a simulated frame)")
    p.add_argument("--fuse-conv-bn", action="store_true", help="fold BatchNorms into convolutions first")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per path on the example (0: no timing)")
    p.add_argument("--threads", type=int, help="torch CPU threads while timing")
    return p.parse_args(argv)


def example_points(path, num_columns: int):
    """(N, num_columns) float32 scan: the .bin file at ``path`` or a simulated 150k-point frame."""
    import numpy as np
    import torch

    if path:
        raw = np.fromfile(path, dtype=np.float32)
        if raw.size % num_columns:
            raise SystemExit(f"--example {path}: {raw.size} float32 values are not rows of the model's "
                             f"{num_columns} input columns")
        return torch.from_numpy(raw.reshape(-1, num_columns))
    from pc3d.benchmark.suite_models import frame_points

    pts = frame_points()[:, 1:]
    if pts.shape[1] != num_columns:
        raise SystemExit(f"the simulated frame has {pts.shape[1]} columns, the model takes {num_columns}: "
                         "pass --example")
    return pts.contiguous()


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _max_diff(a, b) -> float:
    """Largest |a - b| of the three outputs, inf when their shapes differ."""
    worst = 0.0
    for x, y in zip(a, b):
        if x.shape != y.shape:
            return float("inf")
        if x.numel():
            worst = max(worst, float((x.double() - y.double()).abs().max()))
    return worst


def _matched_fraction(got, ref, tol: float = 1e-3) -> float:
    """Share of the eager boxes that the other path also returns: same label, box and score within ``tol``.
    Untrained heads score nearly every cell alike, so their top-K order (and the boxes) can turn on rounding."""
    import torch

    boxes, scores, labels = got
    e_boxes, e_scores, e_labels = ref
    if e_boxes.shape[0] == 0:
        return 1.0 if boxes.shape[0] == 0 else 0.0
    if boxes.shape[0] == 0:
        return 0.0
    a = torch.cat([boxes.double(), scores.double()[:, None]], 1)
    b = torch.cat([e_boxes.double(), e_scores.double()[:, None]], 1)
    close = ((a[:, None, :] - b[None, :, :]).abs().amax(-1) <= tol) & (labels[:, None] == e_labels[None, :])
    return float(close.any(0).double().mean())


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch

    from pc3d.apis import init_model
    from pc3d.apis.export import compile_aoti, export_detector, load_aoti, program_ops
    from pc3d.apis.inference import model_class_names

    ckpt = None if args.checkpoint.lower() == "none" else args.checkpoint
    model = init_model(args.config, ckpt, fuse_conv_bn=args.fuse_conv_bn)
    num_columns = int(model.cfg.model.voxel_encoder["in_channels"])  # point columns after the batch column
    points = example_points(args.example, num_columns)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    program = export_detector(model, points)
    report = dict(config=str(args.config), checkpoint=ckpt, input_columns=num_columns,
                  classes=list(model_class_names(model)), ops=program_ops(program),
                  example_points=int(points.shape[0]), export_s=round(time.perf_counter() - t, 2),
                  torch=torch.__version__, fuse_conv_bn=bool(args.fuse_conv_bn))
    torch.export.save(program, str(out / "program.pt2"))
    report["program"] = str(out / "program.pt2")
    runner = None
    if args.aoti:
        t = time.perf_counter()
        report["aoti_package"] = compile_aoti(program, str(out / "detector_aoti.pt2"))
        report["aoti_compile_s"] = round(time.perf_counter() - t, 2)
        runner = load_aoti(report["aoti_package"])

    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    batched = torch.cat([points.new_zeros(points.shape[0], 1), points], dim=1)

    def eager():
        with torch.no_grad():
            r = model(dict(points=batched, batch_size=1), [{}], mode="predict")[0]
        return r["pred_boxes"], r["pred_scores"], r["pred_labels"]

    exported = program.module()

    def run_exported():
        with torch.no_grad():
            return exported(points)

    reference = eager()
    report["num_boxes"] = int(reference[0].shape[0])
    got = run_exported()
    report["max_abs_diff_exported"] = _max_diff(got, reference)
    report["matched_exported"] = _matched_fraction(got, reference)
    if runner is not None:
        try:
            got = runner(points)
            report["max_abs_diff_aoti"] = _max_diff(got, reference)
            report["matched_aoti"] = _matched_fraction(got, reference)
        except RuntimeError as exc:  # e.g. a size bound AOTInductor derived wrongly (docs/export.md)
            report["aoti_error"] = str(exc)
            runner = None
    if args.repeats > 0:
        report["threads"] = torch.get_num_threads()
        report["eager_s"] = _median_seconds(eager, args.repeats)
        report["exported_s"] = _median_seconds(run_exported, args.repeats)
        if runner is not None:
            report["aoti_s"] = _median_seconds(lambda: runner(points), args.repeats)
    torch.set_num_threads(threads)
    (out / "export.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    sys.exit(1 if "aoti_error" in main() else 0)
