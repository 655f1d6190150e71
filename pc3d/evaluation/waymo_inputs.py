"""The Waymo metric's inputs: class ids and names, IoU thresholds, the IoU function and the validated GT /
prediction columns (golden layout, see ``pc3d.evaluation.waymo``). Shared by the metric, its error breakdown
and the bootstrap."""
from typing import Callable, Dict, Optional

import numpy as np

from pc3d.classes import WAYMO_CLASSES, WAYMO_LABEL_TO_TYPE

# Waymo Label.Type ids and the official names used as result keys.
WAYMO_TYPES = {1: "VEHICLE", 2: "PEDESTRIAN", 4: "CYCLIST"}
DEFAULT_IOU_THRESHOLDS = {1: 0.7, 2: 0.5, 4: 0.5}
DEFAULT_SCORE_CUTOFFS = (np.arange(101) / 100.0).astype(np.float32)
# pc3d label index (0 Vehicle, 1 Pedestrian, 2 Cyclist) -> Waymo type.
LABEL_TO_TYPE = WAYMO_LABEL_TO_TYPE
CLASS_NAMES = WAYMO_CLASSES
LEVEL_2_MAX_POINTS = 5

IoUFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def default_iou_fn(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3D rotated IoU with pc3d's compiled op: ``a (N, 7)``, ``b (M, 7)`` -> ``(N, M)`` float64.

    Computed in float64 like the official C++ (its box fields are doubles), so a pair's IoU falls on
    the same side of the threshold.
    """
    import torch

    from pc3d.ops import iou_3d_rotated

    a64, b64 = (torch.from_numpy(np.asarray(x, np.float64)) for x in (a, b))
    return iou_3d_rotated(a64, b64).numpy()


def _field(d, key: str, n: Optional[int] = None, dtype=None, required: bool = True):
    if key not in d or d[key] is None:
        if required:
            raise ValueError(f"missing field '{key}' (have {sorted(d)})")
        return None
    a = np.asarray(d[key].detach().cpu().numpy() if hasattr(d[key], "detach") else d[key])
    if dtype is not None:
        a = a.astype(dtype)
    if n is not None and len(a) != n:
        raise ValueError(f"field '{key}' has {len(a)} rows, expected {n}")
    return a


def _boxes(d, name: str) -> np.ndarray:
    b = _field(d, "bbox", dtype=np.float32)
    if b.size == 0:
        b = b.reshape(0, 7)
    if b.ndim != 2 or b.shape[1] != 7:
        raise ValueError(f"{name}['bbox'] must be (N, 7) [cx, cy, cz, l, w, h, heading], got {b.shape}")
    if not np.isfinite(b).all():
        raise ValueError(f"{name}['bbox'] has non-finite values")
    return b


def prepare_gt(gt) -> Dict[str, np.ndarray]:
    """Validated GT columns (bbox (N, 7), frame_id, type, level (N,)) without the boxes Waymo leaves out of
    evaluation (no LiDAR point); raises ValueError naming the bad field."""
    bbox = _boxes(gt, "gt")
    n = len(bbox)
    out = {"bbox": bbox, "frame_id": _field(gt, "frame_id", n), "type": _field(gt, "type", n, np.int64)}
    num_points = _field(gt, "num_points", n, np.int64, required=False)
    difficulty = _field(gt, "difficulty", n, np.int64, required=False)
    level = np.ones(n, np.int64) if difficulty is None else np.where(difficulty >= 2, 2, 1)
    keep = np.ones(n, bool)
    if num_points is not None:
        level = np.where(num_points <= LEVEL_2_MAX_POINTS, 2, level)
        keep = num_points > 0  # Waymo excludes boxes without any LiDAR point from evaluation
    out["level"] = level
    return {k: v[keep] for k, v in out.items()}


def prepare_pred(pred) -> Dict[str, np.ndarray]:
    """Validated prediction columns (bbox (N, 7), frame_id, type, score (N,)); raises ValueError naming the
    bad field."""
    bbox = _boxes(pred, "pred")
    n = len(bbox)
    score = _field(pred, "score", n, np.float32)
    if not np.isfinite(score).all():
        raise ValueError("pred['score'] has non-finite values")
    return {"bbox": bbox, "frame_id": _field(pred, "frame_id", n),
            "type": _field(pred, "type", n, np.int64), "score": score}
