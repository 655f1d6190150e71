"""The GT-sampling database: every training object's LiDAR points and box, in one ``.npz``.

Arrays: points (P, 5) float32 [x, y, z, intensity, elongation] with x, y, z relative to the object's box
centre (so pasting adds the centre back); offsets (K + 1,) int64 (object k owns points[offsets[k]:
offsets[k + 1]]); boxes (K, 7) float32 at the object's original ego-frame position; labels,
num_points, difficulty (K,) int64; frame_index (K,) int64 (row of the source frame in the split's infos).
"""
import zipfile
from pathlib import Path

import numpy as np

from ..fileio import atomic_savez
from .box_utils import points_in_boxes_indices

DB_KEYS = ("points", "offsets", "boxes", "labels", "num_points", "difficulty", "frame_index")


def object_points(frame):
    """Per gt box of ``frame`` (dict with points, gt_boxes) the (n_k, 5) float32 points relative to its centre."""
    pts, boxes = frame["points"], frame["gt_boxes"]
    out = []
    for box, idx in zip(boxes, points_in_boxes_indices(pts, boxes)):
        p = pts[idx].copy()
        p[:, :3] -= box[:3]
        out.append(p)
    return out


def build_gt_database(frames, path):
    """Writes the database of the given frames (iterable of (frame_index, frame dict)) to ``path``."""
    pts, boxes, labels, nump, diff, fidx = [], [], [], [], [], []
    for i, frame in frames:
        obj = object_points(frame)
        pts += obj
        boxes.append(frame["gt_boxes"])
        labels.append(frame["gt_labels"])
        nump.append(np.array([len(o) for o in obj], dtype=np.int64))
        diff.append(frame["gt_difficulty"])
        fidx.append(np.full(len(obj), i, dtype=np.int64))
    counts = np.array([len(p) for p in pts], dtype=np.int64)
    db = {
        "points": np.concatenate(pts).astype(np.float32) if pts else np.zeros((0, 5), np.float32),
        "offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        "boxes": np.concatenate(boxes).astype(np.float32) if boxes else np.zeros((0, 7), np.float32),
    }
    for k, v in (("labels", labels), ("num_points", nump), ("difficulty", diff), ("frame_index", fidx)):
        db[k] = np.concatenate(v).astype(np.int64) if v else np.zeros(0, np.int64)
    atomic_savez(path, db)
    return db


def load_gt_database(path):
    """Reads a database written by ``build_gt_database``; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GT database not found: {path} (create it with "
                                f"`python tools/create_data.py synthetic|waymo ... --gt-database`)")
    try:
        with np.load(path, allow_pickle=False) as z:
            db = {k: z[k] for k in DB_KEYS}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        raise ValueError(f"corrupt or truncated GT database {path}: {e}") from e
    if len(db["offsets"]) != len(db["boxes"]) + 1 or db["offsets"][-1] != len(db["points"]):
        raise ValueError(f"inconsistent GT database {path}: {len(db['boxes'])} boxes, "
                         f"{len(db['offsets'])} offsets, {len(db['points'])} points")
    return db
