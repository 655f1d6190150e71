"""Files of the synthetic dataset: one ``.npz`` per frame plus one info JSON per split.

Layout under a root such as ``data/synthetic/``::

    <root>/<split>_infos.json        split index (see ``write_infos``)
    <root>/<split>/<frame_id>.npz    one frame: the arrays of ``simulate_frame`` (see below)
    <root>/gt_database_train.npz     optional GT-sampling database (``converters.synthetic``)

Frame file arrays: points (N, 5) float32 [x, y, z, intensity, elongation] (ego frame),
point_object_id (N,) int32, gt_boxes (M, 7) float32, gt_labels / gt_num_points / gt_difficulty (M,)
int64, empty_boxes (K, 7) float32, empty_labels (K,) int64, frame_id () str, seed () int64.
Files are written to a temporary name and renamed, so an interrupted run never leaves a half file.
"""
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ...fileio import atomic_savez

FRAME_KEYS = {  # name -> (dtype, trailing shape) checked on load
    "points": (np.float32, (5,)), "point_object_id": (np.int32, ()),
    "gt_boxes": (np.float32, (7,)), "gt_labels": (np.int64, ()), "gt_num_points": (np.int64, ()),
    "gt_difficulty": (np.int64, ()), "empty_boxes": (np.float32, (7,)), "empty_labels": (np.int64, ()),
}
INFO_VERSION = 1


def save_frame(path, frame):
    """Writes ``frame`` (dict from ``simulate_frame``) to ``path`` (.npz) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.asarray(frame[k], dtype=dt) for k, (dt, _) in FRAME_KEYS.items()}
    arrays["frame_id"] = np.asarray(str(frame["frame_id"]))
    arrays["seed"] = np.asarray(int(frame["seed"]), dtype=np.int64)
    atomic_savez(path, arrays)


def load_frame(path):
    """Reads a frame file; raises FileNotFoundError / ValueError naming ``path`` when it is missing,
    truncated, or lacks an array or has one of the wrong dtype or shape."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"synthetic frame file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        raise ValueError(f"corrupt or truncated synthetic frame file {path}: {e}") from e
    for key, (dtype, tail) in FRAME_KEYS.items():
        a = data.get(key)
        if a is None:
            raise ValueError(f"synthetic frame file {path} lacks array {key!r}")
        if a.dtype != dtype or a.shape[1:] != tail or a.ndim != 1 + len(tail):
            raise ValueError(f"synthetic frame file {path}: {key} has dtype {a.dtype} shape {a.shape}, "
                             f"expected {np.dtype(dtype)} (n, {', '.join(map(str, tail))})")
    data["frame_id"] = str(data.get("frame_id", path.stem))
    return data


def write_infos(root, split, frames, meta):
    """Writes ``<root>/<split>_infos.json``: {version, split, meta, frames: [{frame_id, path (relative to
    root), seed, num_points, num_boxes, num_empty_boxes}]}."""
    path = Path(root) / f"{split}_infos.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"version": INFO_VERSION, "split": split, "meta": meta, "frames": frames}, indent=1))
    os.replace(tmp, path)
    return path


def read_infos(root, split):
    """Reads ``<root>/<split>_infos.json`` (errors name the file and say how to create it)."""
    path = Path(root) / f"{split}_infos.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: create the split with "
                                f"`python tools/create_data.py synthetic --out {root}`")
    try:
        infos = json.loads(path.read_text())
        frames = infos["frames"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"corrupt synthetic info file {path}: {e}") from e
    return infos, frames
