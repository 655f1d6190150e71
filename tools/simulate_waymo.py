#!/usr/bin/env python
"""Write a small simulated Waymo Open Dataset v2 set (parquet components), no download needed.

    python tools/simulate_waymo.py --out data/waymo_sim --segments 2 --frames 5
    python tools/create_data.py waymo --root data/waymo_sim --out data/waymo_sim_processed

Writes ``<out>/{training,validation}/{lidar,lidar_calibration,lidar_box,vehicle_pose,lidar_pose}/
<segment>.parquet`` from pc3d's LiDAR simulator: range images built from the simulator's own ray
pattern (see ``pc3d/datasets/waymo/simulated.py``), so reading them back returns the simulated points.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's pc3d first


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output root")
    p.add_argument("--segments", type=int, default=2, help="segments per split")
    p.add_argument("--frames", type=int, default=5, help="frames per segment")
    p.add_argument("--splits", nargs="+", default=["training", "validation"])
    p.add_argument("--seed", type=int, default=0, help="base seed")
    p.add_argument("--beams", type=int, default=None, help="LiDAR beams (default: the simulator's 64)")
    p.add_argument("--azimuth-steps", type=int, default=None, help="columns per revolution (default 2650)")
    args = p.parse_args(argv)

    import dataclasses

    import numpy as np
    from tqdm import tqdm

    from pc3d.datasets.simulator import LidarConfig
    from pc3d.datasets.waymo.simulated import simulate_segment

    cfg = LidarConfig()
    if args.beams:
        cfg = dataclasses.replace(cfg, num_beams=args.beams)
    if args.azimuth_steps:
        cfg = dataclasses.replace(cfg, azimuth_steps=args.azimuth_steps)
    jobs = [(s, k) for s in args.splits for k in range(args.segments)]
    for split, k in tqdm(jobs, desc="simulated waymo", unit="segment"):
        seeds = np.random.SeedSequence([args.seed, args.splits.index(split), k]).generate_state(args.frames)
        name = f"sim{args.seed:04d}_{split}_{k:04d}"
        simulate_segment(args.out, split, name, [int(s) for s in seeds], cfg)
    print(f"wrote {len(jobs)} segments x {args.frames} frames to {args.out}")


if __name__ == "__main__":
    main()
