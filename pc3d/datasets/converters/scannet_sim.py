"""``create_data.py scannet-sim``: simulate procedurally furnished rooms in ScanNet v2's raw layout
(``scans/<scene>/*.ply``, ``segs.json``, ``aggregation.json``, ``.txt``, the label tsv and split lists),
ready for ``create_data.py scannet``."""
import time
from pathlib import Path


def add_parser(subparsers):
    p = subparsers.add_parser("scannet-sim", help="simulate ScanNet-layout rooms", description=__doc__)
    p.add_argument("--out", default="data/scannet_sim", help="output ScanNet root (default data/scannet_sim)")
    p.add_argument("--train", type=int, default=40, help="number of training rooms")
    p.add_argument("--val", type=int, default=10, help="number of validation rooms")
    p.add_argument("--seed", type=int, default=0, help="base seed")
    p.add_argument("--density", type=float, default=400.0, help="vertices per square metre of surface")
    p.add_argument("--ascii", action="store_true", help="write ascii PLY (default binary little-endian)")
    p.set_defaults(func=run)
    return p


def run(args):
    from ..scannet.sim_writer import generate_scannet

    if args.train < 0 or args.val < 0 or args.density <= 0:
        raise SystemExit("--train/--val must be >= 0 and --density > 0")
    t0 = time.time()
    splits = generate_scannet(Path(args.out), args.train, args.val, args.seed, args.density, binary=not args.ascii)
    n = sum(len(s) for s in splits.values())
    print(f"simulated {n} rooms in {time.time() - t0:.1f} s -> {args.out}")
