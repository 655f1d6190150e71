"""``create_data.py scannet``: raw ScanNet scans -> pc3d info files (see ``pc3d.datasets.scannet.convert``)."""
import time
from pathlib import Path


def add_parser(subparsers):
    p = subparsers.add_parser("scannet", help="convert raw ScanNet v2 scans to pc3d info files",
                              description=__doc__)
    p.add_argument("--root", default="data/scannet",
                   help="ScanNet root with scans/, scannetv2-labels.combined.tsv, scannetv2_<split>.txt")
    p.add_argument("--out", default=None, help="output folder (default: --root)")
    p.add_argument("--splits", nargs="+", default=["train", "val"], help="splits to convert (default train val)")
    p.set_defaults(func=run)
    return p


def run(args):
    from ..scannet.convert import convert_split, find_meta, info_path
    from ..scannet.labels import TSV_NAME, read_label_map

    root = Path(args.root)
    out = Path(args.out) if args.out else root
    label_map = read_label_map(find_meta(root, TSV_NAME))
    for split in args.splits:
        t0 = time.time()
        rows = convert_split(root, out, split, label_map)
        npts = sum(r["num_points"] for r in rows)
        nbox = sum(len(r["gt_labels"]) for r in rows)
        print(f"{split}: {len(rows)} scenes, {npts} points, {nbox} boxes in {time.time() - t0:.1f} s "
              f"-> {info_path(out, split)}")
