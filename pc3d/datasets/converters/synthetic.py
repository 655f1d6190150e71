"""``create_data.py synthetic``: simulate the train/val splits (and optionally the GT database).

Writes under ``--out`` (layout in ``pc3d.datasets.simulator.writer``):
``{train,val}/<split>_<index:06d>.npz``, ``{train,val}_infos.json`` and, with ``--gt-database``,
``gt_database_train.npz``. Frame ``i`` of a split is simulated from seed
``SeedSequence([seed, split_number, i])`` (train = 0, val = 1): the splits never share a scene and
every frame is bit-identical whatever ``--workers`` is. Workers are processes (``multiprocessing``).
"""
import time
from pathlib import Path

import numpy as np

SPLITS = {"train": 0, "val": 1}


def frame_seed(seed, split, index):
    """The simulator seed (int < 2**63) of frame ``index`` of ``split`` under base ``seed``."""
    return int(np.random.SeedSequence([int(seed), SPLITS[split], int(index)]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def add_parser(subparsers):
    p = subparsers.add_parser("synthetic", help="generate pc3d's simulated LiDAR dataset",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="data/synthetic", help="output root (default data/synthetic)")
    p.add_argument("--train", type=int, default=200, help="number of training frames")
    p.add_argument("--val", type=int, default=50, help="number of validation frames")
    p.add_argument("--seed", type=int, default=0, help="base seed of the whole dataset")
    p.add_argument("--workers", type=int, default=1, help="simulation processes")
    p.add_argument("--gt-database", action="store_true", help="also build gt_database_train.npz for GT-sampling")
    p.set_defaults(func=run)
    return p


def _simulate(job):
    """Worker: simulate and write one frame; returns its info row."""
    from ..simulator import simulate_frame
    from ..simulator.writer import save_frame

    root, split, index, seed = job
    frame_id = f"{split}_{index:06d}"
    rel = f"{split}/{frame_id}.npz"
    frame = simulate_frame(seed, frame_id=frame_id)
    save_frame(Path(root) / rel, frame)
    return {"frame_id": frame_id, "path": rel, "seed": seed, "num_points": int(len(frame["points"])),
            "num_boxes": int(len(frame["gt_boxes"])), "num_empty_boxes": int(len(frame["empty_boxes"])),
            "class_counts": np.bincount(frame["gt_labels"], minlength=3).tolist()}


def generate_split(root, split, num_frames, seed=0, pool=None, progress=True):
    """Simulates ``num_frames`` frames of ``split`` into ``root`` (in ``pool``'s processes when given);
    writes the split's info file and returns its rows (in frame order)."""
    from dataclasses import asdict

    from tqdm import tqdm

    from .. import CLASSES
    from ..simulator.sensor import LidarConfig
    from ..simulator.writer import write_infos

    if num_frames < 0:
        raise ValueError(f"number of {split} frames must be >= 0, got {num_frames}")
    jobs = [(str(root), split, i, frame_seed(seed, split, i)) for i in range(num_frames)]
    rows = []
    with tqdm(total=num_frames, desc=f"synthetic {split}", unit="frame", disable=not progress) as bar:
        for row in (pool.imap(_simulate, jobs, chunksize=1) if pool is not None else map(_simulate, jobs)):
            rows.append(row)
            bar.update()
    meta = {"generator": "pc3d.datasets.simulator", "seed": int(seed), "classes": list(CLASSES),
            "lidar": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(LidarConfig()).items()}}
    write_infos(root, split, rows, meta)
    return rows


def build_database(root, split="train", progress=True):
    """Builds ``<root>/gt_database_<split>.npz`` from the split's frame files."""
    from tqdm import tqdm

    from ..gt_database import build_gt_database
    from ..simulator.writer import load_frame, read_infos

    _, frames = read_infos(root, split)
    it = ((i, load_frame(Path(root) / f["path"])) for i, f in enumerate(frames))
    it = tqdm(it, total=len(frames), desc=f"gt database {split}", unit="frame", disable=not progress)
    return build_gt_database(it, Path(root) / f"gt_database_{split}.npz")


def run(args):
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if args.workers < 1:
        raise SystemExit(f"--workers must be >= 1, got {args.workers}")
    stats = {}
    pool = None
    if args.workers > 1:
        import multiprocessing as mp

        # fork (where available): workers inherit the imported modules instead of re-importing torch;
        # open3d is first imported inside the workers, so no thread pool is forked.
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        pool = mp.get_context(method).Pool(args.workers)
    try:
        for split, n in (("train", args.train), ("val", args.val)):
            stats[split] = generate_split(root, split, n, args.seed, pool)
    finally:
        if pool is not None:
            pool.terminate()
    dt = time.time() - t0
    total = sum(len(r) for r in stats.values())
    for split, rows in stats.items():
        if rows:
            npts = np.mean([r["num_points"] for r in rows])
            cls = np.sum([r["class_counts"] for r in rows], 0)
            print(f"{split}: {len(rows)} frames, {npts:.0f} points/frame, boxes with points "
                  f"Vehicle {cls[0]} Pedestrian {cls[1]} Cyclist {cls[2]}")
    if total:
        print(f"simulated {total} frames in {dt:.1f} s ({dt / total:.3f} s/frame with {args.workers} worker(s)) -> {root}")
    if args.gt_database:
        db = build_database(root, "train")
        print(f"GT database: {len(db['boxes'])} objects, {len(db['points'])} points -> {root / 'gt_database_train.npz'}")
