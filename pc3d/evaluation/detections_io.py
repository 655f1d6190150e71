"""Saving and loading a detector's per-frame outputs with their ground truth (one ``.npz``, no pickle).

``WaymoMetric(dump_file=...)`` writes one after an evaluation, so that the AP of two runs can be compared
on the same frames afterwards (``pc3d.evaluation.bootstrap``, ``tools/compare_detections.py``) without
running the models again. The frames are the records of ``WaymoMetric.process``:

- ``frame_id`` str; ``pred_boxes (K, 7)`` float32 ``[x, y, z, dx, dy, dz, heading]``, ``pred_scores (K,)``
  float32, ``pred_labels (K,)`` int64;
- ``gt_boxes (M, 7)`` float32, ``gt_labels (M,)``, ``gt_num_points (M,)``, ``gt_difficulty (M,)`` int64.

On disk the frames are concatenated: ``frame_id (F,)``, ``num_pred (F,)`` and ``num_gt (F,)`` split the
``pred_*`` and ``gt_*`` columns back into frames.
"""
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from pc3d.fileio import atomic_savez

# field -> (dtype, trailing shape)
PRED_FIELDS = {"pred_boxes": (np.float32, (7,)), "pred_scores": (np.float32, ()), "pred_labels": (np.int64, ())}
GT_FIELDS = {"gt_boxes": (np.float32, (7,)), "gt_labels": (np.int64, ()), "gt_num_points": (np.int64, ()),
             "gt_difficulty": (np.int64, ())}
FORMAT = "pc3d-detections-v1"


def _concat(frames, field, dtype, trail):
    arrs = [np.asarray(f[field], dtype).reshape((-1,) + trail) for f in frames]
    return np.concatenate(arrs) if arrs else np.zeros((0,) + trail, dtype)


def save_detections(path, frames: Sequence[Dict[str, np.ndarray]]) -> Path:
    """Writes ``frames`` (list of per-frame dicts, module docstring) to ``path`` atomically (a temporary file
    renamed over it, so an interrupted write never leaves a truncated file). Returns the path."""
    path = Path(path)
    for i, f in enumerate(frames):
        missing = [k for k in ("frame_id", *PRED_FIELDS, *GT_FIELDS) if k not in f]
        if missing:
            raise ValueError(f"frame {i}: missing fields {missing}")
        for prefix, fields in (("pred", PRED_FIELDS), ("gt", GT_FIELDS)):
            lengths = {k: len(np.asarray(f[k]).reshape((-1,) + fields[k][1])) for k in fields}
            if len(set(lengths.values())) > 1:
                raise ValueError(f"frame {f['frame_id']}: {prefix} fields have different lengths {lengths}")
    arrays = {"format": np.array(FORMAT), "frame_id": np.array([str(f["frame_id"]) for f in frames], dtype=str),
              "num_pred": np.array([len(np.asarray(f["pred_scores"]).reshape(-1)) for f in frames], np.int64),
              "num_gt": np.array([len(np.asarray(f["gt_labels"]).reshape(-1)) for f in frames], np.int64)}
    for field, (dtype, trail) in {**PRED_FIELDS, **GT_FIELDS}.items():
        arrays[field] = _concat(frames, field, dtype, trail)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_savez(path, arrays, compressed=True)


def load_detections(path) -> List[Dict[str, np.ndarray]]:
    """Reads a ``save_detections`` file back into per-frame dicts; raises ValueError naming the file and the
    field that is missing or inconsistent."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no detections file at {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise ValueError(f"{path}: not a pc3d detections file ({e})") from e
    with data:
        need = ("format", "frame_id", "num_pred", "num_gt", *PRED_FIELDS, *GT_FIELDS)
        missing = [k for k in need if k not in data.files]
        if missing:
            raise ValueError(f"{path}: missing fields {missing} (written by WaymoMetric(dump_file=...)?)")
        if str(data["format"]) != FORMAT:
            raise ValueError(f"{path}: format {str(data['format'])!r}, expected {FORMAT!r}")
        cols = {k: data[k] for k in need[1:]}
    n_frames = len(cols["frame_id"])
    for counts, fields in (("num_pred", PRED_FIELDS), ("num_gt", GT_FIELDS)):
        c = cols[counts]
        if c.shape != (n_frames,) or (c < 0).any():
            raise ValueError(f"{path}: '{counts}' must be {n_frames} non-negative counts, got shape {c.shape}")
        for field, (_, trail) in fields.items():
            if cols[field].shape != (int(c.sum()),) + trail:
                raise ValueError(f"{path}: '{field}' has shape {cols[field].shape}, expected "
                                 f"{(int(c.sum()),) + trail} from '{counts}'")
    pred_split = np.cumsum(cols["num_pred"])[:-1]
    gt_split = np.cumsum(cols["num_gt"])[:-1]
    per_field = {k: np.split(cols[k], pred_split) for k in PRED_FIELDS}
    per_field.update({k: np.split(cols[k], gt_split) for k in GT_FIELDS})
    return [{"frame_id": str(fid), **{k: v[i] for k, v in per_field.items()}}
            for i, fid in enumerate(cols["frame_id"])]
