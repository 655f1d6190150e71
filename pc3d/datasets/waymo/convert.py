"""``tools/create_data.py waymo``: Waymo sources -> OpenPCDet-layout points and info files.

``--source v2`` (default): reads the v2 parquet release under ``--root`` (``<root>/<split>/<component>/
<segment>.parquet``, splits 'training' / 'validation' / 'testing') and writes, under ``--out``,
``<processed-dir>/<segment>/<NNNN>.npy`` (both returns of all five lasers, [x, y, z, intensity,
elongation, nlz]) and ``waymo_infos_{train,val,test}.pkl``: the layout ``WaymoDataset(source=
'openpcdet')`` reads fast (no range-image conversion per epoch).

``--source openpcdet``: gathers an existing OpenPCDet processing (``<root>/<processed-dir>/<seq>/<seq>.pkl``
per sequence, restricted to ``<root>/ImageSets/<split>.txt`` when that list exists, as OpenPCDet does)
into ``--out/waymo_infos_<split>.pkl``, checking every frame's ``.npy`` and annotations on the way.

``--gt-database`` then writes ``--out/gt_database_train.npz`` for GT-sampling (``ObjectSample``): every
object of the train split's frames as OpenPCDet's Waymo database holds it (no-label-zone points
dropped, intensity squashed with ``tanh``, points relative to the box centre; see
``pc3d.datasets.gt_database``).
"""
from pathlib import Path

import numpy as np

V2_SPLITS = {"training": "train", "validation": "val", "testing": "test"}


def add_arguments(parser):
    parser.add_argument("--root", required=True, help="v2 release root, or the OpenPCDet data folder")
    parser.add_argument("--out", default=None,
                        help="output folder (OpenPCDet layout); required for v2, defaults to --root for openpcdet")
    parser.add_argument("--source", choices=("v2", "openpcdet"), default="v2", help="input layout")
    parser.add_argument("--splits", nargs="+", default=None,
                        help="v2: training validation testing (default: those present); openpcdet: train val")
    parser.add_argument("--processed-dir", default="waymo_processed_data",
                        help="points folder name under --out (v2) or --root (openpcdet)")
    parser.add_argument("--returns", type=int, nargs="+", default=[1, 2], choices=(1, 2),
                        help="v2 range-image returns to convert")
    parser.add_argument("--workers", type=int, default=1, help="processes (one segment per task)")
    parser.add_argument("--gt-database", action="store_true",
                        help="also build gt_database_train.npz (GT-sampling) from the train split")
    return parser


def add_parser(subparsers):
    """Registers the ``waymo`` subcommand on ``tools/create_data.py``'s dispatcher."""
    p = subparsers.add_parser("waymo", help="Waymo v2 parquet / OpenPCDet layout -> pc3d info files",
                              description=__doc__.split("\n\n")[0])
    add_arguments(p)
    p.set_defaults(func=main)
    return p


def convert_v2_segment(job):
    """Worker: one v2 segment -> its ``.npy`` files; returns the segment's frame infos."""
    from .openpcdet_writer import make_info, save_points
    from .v2_reader import V2Segment

    root, split, segment, points_dir, returns = job
    seg = V2Segment(root, split, segment, with_labels=split != "testing")
    infos = []
    for idx, ts in enumerate(seg.timestamps()):
        pts, counts = seg.points(ts, tuple(returns))
        save_points(points_dir, segment, idx, pts)
        labels = seg.labels(ts) if seg.with_labels else None
        infos.append(make_info(segment, idx, list(counts.values()), seg.vehicle_pose(ts), labels, ts))
    return infos


def convert_v2(root, out, splits=None, processed_dir="waymo_processed_data", returns=(1, 2), workers=1,
               progress=True):
    """Converts v2 splits; returns dict split -> info file path."""
    from tqdm import tqdm

    from .openpcdet_writer import write_infos
    from .v2_reader import list_segments

    root, out = Path(root), Path(out)
    splits = splits or [s for s in V2_SPLITS if (root / s).is_dir()]
    if not splits:
        raise ValueError(f"{root}: no v2 split folder ({', '.join(V2_SPLITS)})")
    written = {}
    for split in splits:
        if split not in V2_SPLITS:
            raise ValueError(f"unknown v2 split {split!r} (expected one of {list(V2_SPLITS)})")
        segments = list_segments(root, split)
        if not segments:
            raise ValueError(f"{root / split / 'lidar'}: no segment files")
        jobs = [(str(root), split, s, str(out / processed_dir), tuple(returns)) for s in segments]
        infos = []
        bar = tqdm(total=len(jobs), desc=f"waymo {split}", unit="segment", disable=not progress)
        if workers > 1:
            import multiprocessing as mp

            with mp.get_context("spawn").Pool(workers) as pool:
                for seg_infos in pool.imap(convert_v2_segment, jobs):
                    infos += seg_infos
                    bar.update()
        else:
            for job in jobs:
                infos += convert_v2_segment(job)
                bar.update()
        bar.close()
        written[split] = write_infos(out / f"waymo_infos_{V2_SPLITS[split]}.pkl", infos)
    return written


def gather_openpcdet(root, out, splits=("train", "val"), processed_dir="waymo_processed_data", progress=True):
    """Collects per-sequence OpenPCDet infos into split info files, validating every frame."""
    from tqdm import tqdm

    from .openpcdet import annos_to_labels, expected_rows, load_infos, load_points, points_path
    from .openpcdet_writer import write_infos

    root, out = Path(root), Path(out)
    points_dir = root / processed_dir
    if not points_dir.is_dir():
        raise ValueError(f"{points_dir}: missing OpenPCDet points folder")
    written = {}
    for split in splits:
        listing = root / "ImageSets" / f"{split}.txt"
        if listing.is_file():
            seqs = [Path(line.strip()).name.replace(".tfrecord", "") for line in listing.read_text().splitlines()
                    if line.strip()]
        else:
            seqs = sorted(p.name for p in points_dir.iterdir() if p.is_dir())
        infos = []
        for seq in tqdm(seqs, desc=f"waymo {split}", unit="sequence", disable=not progress):
            seq_infos = load_infos(points_dir / seq / f"{seq}.pkl")
            for info in seq_infos:
                where = f"{points_dir / seq / (seq + '.pkl')} frame {info.get('frame_id')}"
                load_points(points_path(points_dir, info), expected_rows(info))
                if "annos" in info:
                    annos_to_labels(info["annos"], where)
            infos += seq_infos
        written[split] = write_infos(out / f"waymo_infos_{split}.pkl", infos)
    return written


def build_database(root, split="train", processed_dir="waymo_processed_data", progress=True):
    """Writes ``<root>/gt_database_<split>.npz`` from the OpenPCDet-layout split under ``root``: the
    objects of every frame as ``WaymoDataset(source='openpcdet', tanh_intensity=True)`` loads it
    (the database OpenPCDet builds with ``create_groundtruth_database``, sampled interval 1)."""
    from tqdm import tqdm

    from ..gt_database import build_gt_database
    from .dataset import WaymoDataset

    ds = WaymoDataset(root, split, source="openpcdet", processed_dir=processed_dir, tanh_intensity=True)
    frames = tqdm(((i, ds.get_data_info(i)) for i in range(len(ds))), total=len(ds), desc=f"gt database {split}",
                  unit="frame", disable=not progress)
    return build_gt_database(frames, Path(root) / f"gt_database_{split}.npz")


def main(args):
    if args.source == "v2":
        if args.out is None:
            raise SystemExit("create_data.py waymo --source v2 needs --out")
        written = convert_v2(args.root, args.out, args.splits, args.processed_dir, args.returns, args.workers)
    else:
        written = gather_openpcdet(args.root, args.out or args.root, args.splits or ("train", "val"), args.processed_dir)
    for split, path in written.items():
        print(f"{split}: {path}")
    if args.gt_database:
        out = Path(args.out or args.root)
        db = build_database(out, "train", args.processed_dir)
        counts = np.bincount(db["labels"], minlength=3)
        print(f"gt database: {len(db['boxes'])} objects (Vehicle {counts[0]}, Pedestrian {counts[1]}, "
              f"Cyclist {counts[2]}) -> {out / 'gt_database_train.npz'}")
    return written
