"""Writes the OpenPCDet-processed Waymo layout (see ``openpcdet.py`` for the format).

``save_points`` writes one frame's ``<points_dir>/<sequence>/<NNNN>.npy``; ``make_info`` builds the
frame's info dict in OpenPCDet's structure; ``write_infos`` pickles a split's list.
"""
import pickle
from pathlib import Path

import numpy as np

from .openpcdet import NUM_COLUMNS, TYPE_TO_NAME


def save_points(points_dir, sequence, sample_idx, points):
    """Writes (N, 6) float32 [x, y, z, intensity, elongation, nlz] to ``<sequence>/<sample_idx:04d>.npy``."""
    pts = np.asarray(points, dtype=np.float32)
    if pts.ndim != 2 or pts.shape[1] != NUM_COLUMNS:
        raise ValueError(f"points must be (N, {NUM_COLUMNS}), got {pts.shape}")
    path = Path(points_dir) / sequence / f"{int(sample_idx):04d}.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, pts)
    return path


def make_annos(labels):
    """``schema.BoxLabels`` -> OpenPCDet ``annos`` dict (every box kept, types as class names)."""
    boxes = np.asarray(labels.boxes, dtype=np.float64).reshape(-1, 7)
    return {
        "name": np.array([TYPE_TO_NAME[int(t)] for t in labels.types], dtype="<U10"),
        "difficulty": np.asarray(labels.difficulty, dtype=np.int64),
        "dimensions": boxes[:, 3:6].copy(),
        "location": boxes[:, 0:3].copy(),
        "heading_angles": boxes[:, 6].copy(),
        "obj_ids": np.array([str(i) for i in labels.object_ids]),
        "tracking_difficulty": np.asarray(labels.difficulty, dtype=np.int64),
        "num_points_in_gt": np.asarray(labels.num_points, dtype=np.int64),
        "gt_boxes_lidar": boxes.copy(),
    }


def make_info(sequence, sample_idx, points_per_lidar, pose, labels=None, timestamp_micros=None):
    """One frame's info dict.

    Args:
        sequence: segment / sequence name; sample_idx: frame index in the sequence.
        points_per_lidar: list of int, rows of the frame's ``.npy`` per (return, laser) in file order.
        pose: (4, 4) world_from_vehicle.
        labels: ``schema.BoxLabels`` or None (unlabelled data: no 'annos').
        timestamp_micros: the v2 ``key.frame_timestamp_micros`` (pc3d extra field), or None.
    """
    info = {"point_cloud": {"num_features": 5, "lidar_sequence": sequence, "sample_idx": int(sample_idx)},
            "frame_id": f"{sequence}_{int(sample_idx):03d}",
            "pose": np.asarray(pose, dtype=np.float32).reshape(4, 4),
            "num_points_of_each_lidar": [int(n) for n in points_per_lidar]}
    if timestamp_micros is not None:
        info["timestamp_micros"] = int(timestamp_micros)
    if labels is not None:
        info["annos"] = make_annos(labels)
    return info


def write_infos(path, infos):
    """Pickles a split's list of frame infos to ``path`` (e.g. ``<root>/waymo_infos_train.pkl``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(list(infos), f)
    return path
