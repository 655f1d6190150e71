"""``create_data.py custom``: index your own labelled data (layout in ``pc3d.datasets.custom``).

Reads every ``points/<frame_id>.*`` file and its ``labels/<frame_id>.{json,txt}`` (checking both), and
writes ``custom_<split>_infos.json`` for each ``splits/<split>.txt`` (or, without a splits folder, a
``train`` / ``val`` split of ``--val-fraction`` of the frames, every k-th frame to val) plus, with
``--gt-database``, ``gt_database_train.npz`` for GT-sampling. Errors name the file and what is wrong.
"""
import json
from pathlib import Path


def add_parser(subparsers):
    p = subparsers.add_parser("custom", help="index your own labelled point clouds (docs/custom_dataset.md)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--root", required=True, help="dataset root with points/, labels/ and optionally splits/")
    p.add_argument("--columns", help="names of a .bin/.npy row's values, e.g. x,y,z,intensity (default "
                                     "x,y,z,intensity); stored in the info files")
    p.add_argument("--classes", nargs="+", help="class names in label order (default: every class in the labels, "
                                                "sorted); configs may still choose their own")
    p.add_argument("--intensity-scale", type=float, help="full scale of the recorded intensity (e.g. 255)")
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="without splits/: share of the frames put in val (default 0.2)")
    p.add_argument("--gt-database", action="store_true", help="also build gt_database_train.npz for GT-sampling")
    p.set_defaults(func=run)
    return p


def scan_frames(root):
    """``{frame_id: (points path, labels path or None)}`` of the layout; raises ValueError for a frame with
    two point files."""
    from pc3d.io import POINT_EXTENSIONS

    from ..custom import LABEL_EXTENSIONS

    root = Path(root)
    pdir = root / "points"
    if not pdir.is_dir():
        raise FileNotFoundError(f"{pdir} not found: a custom dataset keeps one point file per frame in points/")
    frames = {}
    for f in sorted(pdir.iterdir()):
        if f.suffix.lower() not in POINT_EXTENSIONS:
            continue
        if f.stem in frames:
            raise ValueError(f"frame {f.stem!r} has two point files: {frames[f.stem][0]} and {f}")
        labels = [root / "labels" / (f.stem + e) for e in LABEL_EXTENSIONS]
        frames[f.stem] = (f, next((p for p in labels if p.is_file()), None))
    if not frames:
        raise FileNotFoundError(f"{pdir}: no point files ({', '.join(POINT_EXTENSIONS)})")
    return frames


def splits_of(root, frame_ids, val_fraction):
    """``{split: [frame ids]}`` from ``splits/*.txt``, else every ``round(1 / val_fraction)``-th frame in val."""
    sdir = Path(root) / "splits"
    if sdir.is_dir() and any(sdir.glob("*.txt")):
        out = {}
        for f in sorted(sdir.glob("*.txt")):
            ids = [s.strip() for s in f.read_text().splitlines() if s.strip() and not s.startswith("#")]
            missing = [i for i in ids if i not in frame_ids]
            if missing:
                raise ValueError(f"{f}: frames without a point file in points/: {missing[:10]}")
            out[f.stem] = ids
        return out
    if not 0 <= val_fraction < 1:
        raise ValueError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    ids = sorted(frame_ids)
    if val_fraction == 0:
        return {"train": ids}
    step = max(int(round(1 / val_fraction)), 2)
    return {"train": [i for k, i in enumerate(ids) if k % step != step - 1],
            "val": [i for k, i in enumerate(ids) if k % step == step - 1]}


def build_infos(root, columns=None, classes=None, intensity_scale=None, val_fraction=0.2, progress=True):
    """Checks every frame and writes the info files; returns ``{split: rows}``."""
    from tqdm import tqdm

    from pc3d.io import parse_columns, read_points

    from ..custom import INFO_VERSION, info_path, read_labels

    root = Path(root)
    cols = ",".join(parse_columns(columns)) if columns else "x,y,z,intensity"
    frames = scan_frames(root)
    splits = splits_of(root, set(frames), val_fraction)
    rows, seen = {}, set()
    for fid in tqdm(sorted(frames), desc="custom frames", unit="frame", disable=not progress):
        pts_path, lab_path = frames[fid]
        cloud = read_points(pts_path, cols)
        labels = read_labels(lab_path) if lab_path is not None else []
        seen.update(b["class"] for b in labels)
        rows[fid] = {"frame_id": fid, "points": str(pts_path.relative_to(root)),
                     "labels": str(lab_path.relative_to(root)) if lab_path else None,
                     "num_points": int(len(cloud.points)), "fields": list(cloud.fields),
                     "boxes": [b["box"] for b in labels], "names": [b["class"] for b in labels]}
    classes = list(classes) if classes else sorted(seen)
    meta = {"layout": "pc3d custom v1", "columns": cols, "classes": classes, "intensity_scale": intensity_scale}
    out = {}
    for split, ids in splits.items():
        out[split] = [rows[i] for i in ids]
        no_labels = [i for i in ids if rows[i]["labels"] is None]
        if no_labels:
            print(f"{split}: {len(no_labels)} frames have no label file (no boxes): {no_labels[:5]}")
        info_path(root, split).write_text(json.dumps({"version": INFO_VERSION, "split": split, "meta": meta,
                                                     "frames": out[split]}, indent=1))
    return out, classes


def run(args):
    from collections import Counter

    root = Path(args.root)
    out, classes = build_infos(root, args.columns, args.classes, args.intensity_scale, args.val_fraction)
    for split, rows in out.items():
        counts = Counter(n for r in rows for n in r["names"])
        print(f"{split}: {len(rows)} frames, boxes " + ", ".join(f"{c} {counts.get(c, 0)}" for c in classes)
              + f" -> {root / f'custom_{split}_infos.json'}")
    if args.gt_database:
        from tqdm import tqdm

        from ..custom import CustomDataset
        from ..gt_database import build_gt_database

        if "train" not in out:
            raise SystemExit("--gt-database needs a 'train' split")
        ds = CustomDataset(root, "train", classes=classes)
        it = tqdm(((i, ds.get_data_info(i)) for i in range(len(ds))), total=len(ds), desc="gt database",
                  unit="frame")
        db = build_gt_database(it, root / "gt_database_train.npz")
        print(f"GT database: {len(db['boxes'])} objects, {len(db['points'])} points -> "
              f"{root / 'gt_database_train.npz'}")
