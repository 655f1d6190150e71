"""Rigid transforms of nuScenes records: ``translation (3,)`` + ``rotation (4,) [w, x, y, z]`` -> 4x4.

``calibrated_sensor`` records give sensor -> ego, ``ego_pose`` records ego -> global. A point ``p`` in a
sweep's LiDAR frame reaches the keyframe LiDAR frame by
``inv(key lidar2ego) @ inv(key ego2global) @ sweep ego2global @ sweep lidar2ego @ p``.
"""
from __future__ import annotations

import numpy as np

from pc3d.geometry.nuscenes import matrix_to_quaternion, quaternion_to_matrix


def pose_matrix(translation, rotation) -> np.ndarray:
    """(4, 4) float64 homogeneous transform of a record's ``translation`` (3,) and ``rotation`` (4,) [w, x, y, z]."""
    t = np.asarray(translation, dtype=np.float64).reshape(3)
    q = np.asarray(rotation, dtype=np.float64).reshape(1, 4)
    m = np.eye(4)
    m[:3, :3] = quaternion_to_matrix(q)[0]
    m[:3, 3] = t
    return m


def record_pose(record: dict) -> np.ndarray:
    """(4, 4) float64 transform of a calibrated_sensor or ego_pose record."""
    return pose_matrix(record["translation"], record["rotation"])


def invert(m: np.ndarray) -> np.ndarray:
    """Inverse of a rigid (4, 4) transform (rotation transposed, no general matrix inverse)."""
    out = np.eye(4)
    out[:3, :3] = m[:3, :3].T
    out[:3, 3] = -m[:3, :3].T @ m[:3, 3]
    return out


def matrix_to_record(m: np.ndarray) -> tuple[list, list]:
    """(translation list (3,), rotation list (4,) [w, x, y, z]) of a rigid (4, 4) transform."""
    m = np.asarray(m, dtype=np.float64)
    return m[:3, 3].tolist(), matrix_to_quaternion(m[None, :3, :3])[0].tolist()


def transform_points(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Applies (4, 4) ``m`` to the xyz columns of ``points`` (N, C) (other columns kept); float64 math."""
    out = np.array(points, dtype=np.float64, copy=True)
    out[:, :3] = out[:, :3] @ m[:3, :3].T + m[:3, 3]
    return out
