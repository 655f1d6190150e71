"""nuScenes geometry (loaders and the detection metric): quaternions, LiDAR <-> global boxes, bike-rack tests.

nuScenes stores every box in the global (map) frame as ``translation (x, y, z)``, ``size (w, l, h)``
and ``rotation`` a unit quaternion ``(w, x, y, z)``; pc3d keeps boxes in the LiDAR frame as
``(x, y, z, dx, dy, dz, heading, vx, vy)``. ``dx`` runs along the heading (the nuScenes *length*
``l``), ``dy`` across it (the nuScenes *width* ``w``), so ``size = (dy, dx, dz)``.

Conversion LiDAR -> global with ``lidar2global = ego2global @ lidar2ego`` (4x4):
``translation = R @ (x, y, z) + t``, ``rotation = quat(R @ Rz(heading))``, ``size = (dy, dx, dz)``,
``velocity = (R @ (vx, vy, 0))[:2]``. The metric only uses the yaw of a box (angle of its rotated
+x axis in the xy plane), its xy centre, its size and its xy velocity.
"""
from __future__ import annotations

import numpy as np


def quaternion_yaw(q: np.ndarray) -> np.ndarray:
    """Yaw of boxes given as quaternions: the angle of the box's rotated +x axis in the xy plane.

    Args:
        q: (N, 4) float [w, x, y, z]; need not be unit length (both atan2 arguments are quadratic
            forms of q, so the scale cancels).
    Returns:
        (N,) float64 yaw in (-pi, pi].
    """
    q = np.asarray(q, dtype=np.float64)
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    # First column of the rotation matrix: (w^2 + x^2 - y^2 - z^2, 2(xy + wz), 2(xz - wy)).
    return np.arctan2(2.0 * (x * y + w * z), w * w + x * x - y * y - z * z)


def yaw_to_quaternion(yaw: np.ndarray) -> np.ndarray:
    """Quaternions of rotations about +z.

    Args:
        yaw: (N,) float, radians.
    Returns:
        (N, 4) float64 [w, x, y, z] = [cos(yaw/2), 0, 0, sin(yaw/2)].
    """
    yaw = np.asarray(yaw, dtype=np.float64)
    q = np.zeros((yaw.shape[0], 4))
    q[:, 0] = np.cos(yaw / 2)
    q[:, 3] = np.sin(yaw / 2)
    return q


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices of quaternions.

    Args:
        q: (N, 4) float [w, x, y, z], non-zero (normalised here).
    Returns:
        (N, 3, 3) float64.
    """
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], axis=1)


def matrix_to_quaternion(rot: np.ndarray) -> np.ndarray:
    """Unit quaternions of rotation matrices (Shepperd's method: divide by the largest component).

    Args:
        rot: (N, 3, 3) float, proper rotations.
    Returns:
        (N, 4) float64 [w, x, y, z] with w >= 0.
    """
    r = np.asarray(rot, dtype=np.float64)
    # 4 * squares of the components; the largest one is far from 0, so dividing by it is stable.
    four_sq = np.stack([
        1 + r[:, 0, 0] + r[:, 1, 1] + r[:, 2, 2],
        1 + r[:, 0, 0] - r[:, 1, 1] - r[:, 2, 2],
        1 - r[:, 0, 0] + r[:, 1, 1] - r[:, 2, 2],
        1 - r[:, 0, 0] - r[:, 1, 1] + r[:, 2, 2],
    ], axis=1)
    k = np.argmax(four_sq, axis=1)
    big = 0.5 * np.sqrt(np.maximum(four_sq[np.arange(len(k)), k], 0.0))
    # Off-diagonal sums and differences give 4 * (product of two components).
    wx = r[:, 2, 1] - r[:, 1, 2]
    wy = r[:, 0, 2] - r[:, 2, 0]
    wz = r[:, 1, 0] - r[:, 0, 1]
    xy = r[:, 0, 1] + r[:, 1, 0]
    xz = r[:, 0, 2] + r[:, 2, 0]
    yz = r[:, 1, 2] + r[:, 2, 1]
    cand = np.stack([
        np.stack([4 * big * big, wx, wy, wz], -1),
        np.stack([wx, 4 * big * big, xy, xz], -1),
        np.stack([wy, xy, 4 * big * big, yz], -1),
        np.stack([wz, xz, yz, 4 * big * big], -1),
    ], axis=1)
    q = cand[np.arange(len(k)), k] / (4 * big)[:, None]
    q = q * np.where(q[:, :1] < 0, -1.0, 1.0)
    return q


def angle_diff(a: np.ndarray, b: np.ndarray, period: np.ndarray | float) -> np.ndarray:
    """Absolute smallest angle from ``b`` to ``a`` when angles repeat every ``period``.

    Args:
        a, b: (N,) float radians. period: scalar or (N,) float, 2*pi (or pi for symmetric boxes).
    Returns:
        (N,) float64 in [0, pi].
    """
    d = np.mod(a - b + period / 2, period) - period / 2
    d = np.where(d > np.pi, d - 2 * np.pi, d)
    return np.abs(d)


def _check_transform(lidar2global: np.ndarray) -> np.ndarray:
    m = np.asarray(lidar2global, dtype=np.float64)
    if m.shape != (4, 4) or not np.all(np.isfinite(m)):
        raise ValueError(f"lidar2global must be a finite (4, 4) matrix, got shape {m.shape}")
    rot = m[:3, :3]
    if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-5) or np.linalg.det(rot) < 0:
        raise ValueError(f"lidar2global[:3, :3] must be a proper rotation, got {rot.tolist()}")
    return m


def lidar_boxes_to_global(boxes: np.ndarray, lidar2global: np.ndarray) -> dict:
    """pc3d LiDAR-frame boxes -> nuScenes global-frame box fields.

    Args:
        boxes: (M, 9) float [x, y, z, dx, dy, dz, heading, vx, vy] (box centre, LiDAR frame), or
            (M, 7) without velocity (velocity then 0).
        lidar2global: (4, 4) float, ``ego2global @ lidar2ego`` of the sample's LIDAR_TOP sample_data.
    Returns:
        dict with ``translation (M, 3)``, ``size (M, 3)`` [w, l, h], ``rotation (M, 4)`` [w, x, y, z],
        ``velocity (M, 2)`` global vx, vy; all float64.
    """
    b = np.asarray(boxes, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] not in (7, 9):
        raise ValueError(f"boxes must be (M, 7) or (M, 9) [x, y, z, dx, dy, dz, heading(, vx, vy)], got {b.shape}")
    m = _check_transform(lidar2global)
    rot = m[:3, :3]
    vel = np.zeros((len(b), 3))
    if b.shape[1] == 9:
        vel[:, :2] = b[:, 7:9]
    box_rot = rot[None] @ quaternion_to_matrix(yaw_to_quaternion(b[:, 6]))
    return {
        "translation": b[:, :3] @ rot.T + m[:3, 3],
        "size": b[:, [4, 3, 5]].copy(),
        "rotation": matrix_to_quaternion(box_rot) if len(b) else np.zeros((0, 4)),
        "velocity": (vel @ rot.T)[:, :2],
    }


def global_boxes_to_lidar(translation, size, rotation, velocity, lidar2global) -> np.ndarray:
    """nuScenes global-frame box fields -> pc3d LiDAR-frame boxes (inverse of ``lidar_boxes_to_global``).

    Args:
        translation: (M, 3); size: (M, 3) [w, l, h]; rotation: (M, 4) [w, x, y, z];
        velocity: (M, 2) global vx, vy (NaN kept); lidar2global: (4, 4).
    Returns:
        (M, 9) float64 [x, y, z, dx, dy, dz, heading, vx, vy]; heading wrapped to [-pi, pi).
    """
    m = _check_transform(lidar2global)
    rot_t = m[:3, :3].T
    translation = np.asarray(translation, dtype=np.float64).reshape(-1, 3)
    n = len(translation)
    size = np.asarray(size, dtype=np.float64).reshape(n, 3)
    box_rot = rot_t[None] @ quaternion_to_matrix(np.asarray(rotation, dtype=np.float64).reshape(n, 4))
    heading = np.arctan2(box_rot[:, 1, 0], box_rot[:, 0, 0])
    heading = np.mod(heading + np.pi, 2 * np.pi) - np.pi
    vel = np.zeros((n, 3))
    vel[:, :2] = np.asarray(velocity, dtype=np.float64).reshape(n, 2)
    out = np.empty((n, 9))
    out[:, :3] = (translation - m[:3, 3]) @ rot_t.T
    out[:, 3:6] = size[:, [1, 0, 2]]
    out[:, 6] = heading
    out[:, 7:9] = (vel @ rot_t.T)[:, :2]
    return out


def centres_in_boxes(points: np.ndarray, translation, size, rotation) -> np.ndarray:
    """Which points lie inside (or on the faces of) which oriented 3D boxes.

    Args:
        points: (N, 3) float global xyz; translation: (R, 3); size: (R, 3) [w, l, h];
        rotation: (R, 4) [w, x, y, z].
    Returns:
        (N, R) bool; a box's local x spans its length l, local y its width w, local z its height h.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    translation = np.asarray(translation, dtype=np.float64).reshape(-1, 3)
    r = len(translation)
    if r == 0 or len(points) == 0:
        return np.zeros((len(points), r), dtype=bool)
    size = np.asarray(size, dtype=np.float64).reshape(r, 3)
    rot = quaternion_to_matrix(np.asarray(rotation, dtype=np.float64).reshape(r, 4))
    # local = R^T (p - c), for every (point, box) pair.
    local = np.einsum("rji,nrj->nri", rot, points[:, None, :] - translation[None])
    half = size[:, [1, 0, 2]] / 2  # (l, w, h) halves along local (x, y, z)
    return np.all(np.abs(local) <= half[None], axis=2)
