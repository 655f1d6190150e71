#!/usr/bin/env python
"""Run a trained detector on your own point clouds: files, folders and ROS bags.

    python tools/infer.py CONFIG CHECKPOINT INPUT... [--out DIR] [--columns x,y,z,intensity,ring]
        [--score-thr 0.3] [--align-ground] [--translate DX DY DZ] [--rotate-deg ROLL PITCH YAW]
        [--axes x,-z,y] [--scale 0.001] [--intensity-scale 255] [--topic /points]

INPUT: .bin .npy .npz .pcd .ply .las .laz files, folders of them, ROS 1 .bag files, ROS 2 bag folders.
Per frame, ``--out`` gets ``<frame>.json`` (boxes, class names, scores, what was checked),
``<frame>_bev.png`` and ``<frame>_3d.html`` (interactive, works offline). Every input check that fails
(units, axes, ground height, range, intensity) is printed with the option that fixes it. The exit status
is 1 when a frame could not be read, 0 otherwise.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's pc3d first


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("config", help="detector config (.py)")
    p.add_argument("checkpoint", help="trained weights (.pth)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="point files, folders or bags")
    p.add_argument("--out", default="work_dirs/infer", help="output folder (default work_dirs/infer)")
    p.add_argument("--columns", help="names of a .bin/.npy row's values, e.g. x,y,z,intensity,ring (default: "
                                     "the model's x,y,z,intensity[,elongation]); PCD/PLY/LAS/bags name their own")
    p.add_argument("--score-thr", type=float, default=0.3, help="lowest score kept (default 0.3)")
    p.add_argument("--align-ground", action="store_true",
                   help="level the estimated ground plane and put it at the height the model was trained with")
    p.add_argument("--translate", type=float, nargs=3, metavar=("DX", "DY", "DZ"),
                   help="sensor -> model frame shift in metres, e.g. 0 0 1.9 for a sensor 1.9 m above the ground")
    p.add_argument("--rotate-deg", type=float, nargs=3, metavar=("ROLL", "PITCH", "YAW"),
                   help="sensor -> model frame rotation in degrees (about x, y, z in that order)")
    p.add_argument("--axes", help="new x,y,z as signed old axes, e.g. x,-z,y for a y-up cloud")
    p.add_argument("--scale", type=float, help="multiply x, y, z (0.001 for millimetres)")
    p.add_argument("--intensity-scale", type=float,
                   help="full scale of the recorded intensity (default: guessed 1, 255 or 65535)")
    p.add_argument("--topic", help="PointCloud2 topic of the bags (needed when a bag has several)")
    p.add_argument("--color-by", choices=("height", "intensity"), default="height", help="3D view point colours")
    p.add_argument("--no-html", action="store_true", help="skip the 3D HTML views (about 5 MB each)")
    p.add_argument("--no-png", action="store_true", help="skip the BEV PNGs")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    return p.parse_args(argv)


def summary_table(results, class_names) -> str:
    """Fixed-width table: one row per frame (points used, detections per class, warnings, seconds)."""
    width = max([len(r.name) for r in results] + [5])
    head = f"{'frame':<{width}} {'points':>8} " + " ".join(f"{c[:10]:>10}" for c in class_names) + \
        f" {'warnings':>8} {'s':>6}"
    rows = [head, "-" * len(head)]
    for r in results:
        if r.error:
            rows.append(f"{r.name:<{width}} FAILED: {r.error}")
            continue
        counts = [int((r.labels == k).sum()) for k in range(len(class_names))]
        rows.append(f"{r.name:<{width}} {len(r.points):>8} " + " ".join(f"{n:>10}" for n in counts) +
                    f" {len(r.report.warnings):>8} {r.seconds:>6.1f}")
    return "\n".join(rows)


def main(argv=None):
    args = parse_args(argv)
    import torch
    from tqdm import tqdm

    from pc3d.apis import inference_file, init_model
    from pc3d.apis.inference import model_class_names
    from pc3d.io import PointCloudError, expand_inputs, make_transform

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        transform = make_transform(axes=args.axes, translate=args.translate, rotate_deg=args.rotate_deg)
        inputs = expand_inputs(args.inputs)
    except PointCloudError as e:
        raise SystemExit(f"error: {e}")
    model = init_model(args.config, args.checkpoint, device=args.device)
    names = model_class_names(model)
    bar = tqdm(desc="frames", unit="frame", total=None)
    shown = set()

    def progress(r):
        bar.update()
        for w in (r.report.warnings if r.report is not None else []):
            key = w.split(": ", 1)[-1][:60]  # the same problem in every frame is printed once
            if key not in shown:
                shown.add(key)
                tqdm.write(f"warning: {w}", file=sys.stderr)
        if r.error:
            tqdm.write(f"error: {r.error}", file=sys.stderr)

    try:
        results = inference_file(model, inputs, out_dir=args.out, columns=args.columns, score_thr=args.score_thr,
                                 transform=transform, scale=args.scale, intensity_scale=args.intensity_scale,
                                 align_ground=args.align_ground, topic=args.topic, write_png=not args.no_png,
                                 write_html=not args.no_html, color_by=args.color_by, on_error="skip",
                                 progress=progress)
    except PointCloudError as e:
        bar.close()
        raise SystemExit(f"error: {e}")
    bar.close()
    print(summary_table(results, names))
    ok = [r for r in results if not r.error]
    print(f"{len(ok)} of {len(results)} frames, {sum(len(r.boxes) for r in ok)} detections >= {args.score_thr:g} "
          f"-> {args.out}")
    return 1 if len(ok) < len(results) or not results else 0


if __name__ == "__main__":
    sys.exit(main())
