"""LiDAR points of a keyframe and its previous sweeps, in the keyframe LiDAR frame with a time lag.

On disk (``samples/LIDAR_TOP/*.pcd.bin`` keyframes, ``sweeps/LIDAR_TOP/*.pcd.bin`` sweeps) a scan is
raw float32 rows ``[x, y, z, intensity, ring]`` in its own LiDAR frame (intensity 0-255, ring = beam
index). ``sample_data.prev`` chains every scan of the sensor backwards in time (sweeps and earlier
keyframes alike); the ``N`` previous sweeps of a keyframe are the first ``N`` links of that chain.

Output rows are ``[x, y, z, intensity, time_lag]``: xyz moved into the keyframe LiDAR frame,
``time_lag = (t_keyframe - t_sweep) * 1e-6`` seconds (0 for the keyframe, > 0 for sweeps). As in the
devkit's ``from_file_multisweep`` (and OpenPCDet/mmdet3d), sweep points within ``remove_close`` metres
of their own sensor in both x and y (the ego car's own returns) are dropped; keyframe points are kept.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .poses import invert, record_pose
from .tables import NuScenesFormatError, NuScenesTables

POINT_DIMS = 5  # x, y, z, intensity, ring
BYTES_PER_POINT = POINT_DIMS * 4


def check_points_file(path) -> int:
    """Number of points of a ``.pcd.bin`` file from its size; errors name the file.

    Raises:
        NuScenesFormatError: missing file, or a size that is not a whole number of 5 x float32 rows
            (a truncated download or copy).
    """
    path = Path(path)
    if not path.is_file():
        raise NuScenesFormatError(f"missing LiDAR file {path}")
    size = path.stat().st_size
    if size % BYTES_PER_POINT:
        raise NuScenesFormatError(f"{path}: truncated or not a nuScenes LiDAR file: {size} bytes is not a multiple "
                                  f"of {BYTES_PER_POINT} (rows of {POINT_DIMS} float32 x, y, z, intensity, ring)")
    return size // BYTES_PER_POINT


def read_points(path) -> np.ndarray:
    """(N, 5) float32 [x, y, z, intensity, ring] of one ``.pcd.bin`` file (LiDAR frame of that scan)."""
    n = check_points_file(path)
    pts = np.fromfile(path, dtype=np.float32).reshape(n, POINT_DIMS)
    if not np.isfinite(pts[:, :4]).all():
        raise NuScenesFormatError(f"{path}: non-finite x, y, z or intensity values")
    return pts


def sweep_records(tables: NuScenesTables, key_sd: dict, max_sweeps: int) -> list:
    """Up to ``max_sweeps`` sample_data records before the keyframe ``key_sd``, newest first."""
    out, rec = [], key_sd
    while len(out) < max_sweeps:
        prev = tables.field("sample_data", rec, "prev")
        if not prev:
            break
        rec = tables.get("sample_data", prev, ("sample_data", rec["token"], "prev"))
        out.append(rec)
    return out


def sweep_infos(tables: NuScenesTables, key_sd: dict, max_sweeps: int) -> list:
    """The info entries of a keyframe's previous sweeps (what ``load_multisweep`` needs).

    Returns:
        list (newest first) of dicts: ``token`` str, ``path`` str (relative to the root), ``timestamp`` int µs,
        ``sensor2lidar`` (4, 4) float64 (sweep LiDAR -> keyframe LiDAR), ``time_lag`` float seconds.
    """
    key_lidar2global = _lidar2global(tables, key_sd)
    global2key = invert(key_lidar2global)
    out = []
    for rec in sweep_records(tables, key_sd, max_sweeps):
        out.append({
            "token": rec["token"],
            "path": tables.field("sample_data", rec, "filename"),
            "timestamp": int(tables.field("sample_data", rec, "timestamp")),
            "sensor2lidar": global2key @ _lidar2global(tables, rec),
            "time_lag": (int(key_sd["timestamp"]) - int(rec["timestamp"])) * 1e-6,
        })
    return out


def _lidar2global(tables: NuScenesTables, sd: dict) -> np.ndarray:
    ego = tables.link("sample_data", sd, "ego_pose_token", "ego_pose")
    cs = tables.link("sample_data", sd, "calibrated_sensor_token", "calibrated_sensor")
    return record_pose(ego) @ record_pose(cs)


def load_multisweep(root, key_path: str, sweeps: list, num_sweeps: int | None = None,
                    remove_close: float = 1.0) -> np.ndarray:
    """Keyframe points plus its previous sweeps in the keyframe LiDAR frame.

    Args:
        root: dataset root; key_path: keyframe file relative to it.
        sweeps: ``sweep_infos`` entries (newest first); the first ``num_sweeps`` (None = all) are used.
        remove_close: sweep points with |x| < r and |y| < r in their own sensor frame are dropped (0: none).
    Returns:
        (N, 5) float32 [x, y, z, intensity, time_lag]; keyframe rows first, then sweeps newest first.
    """
    root = Path(root)
    key = read_points(root / key_path)
    parts = [np.concatenate([key[:, :4], np.zeros((len(key), 1), np.float32)], 1)]
    for sw in sweeps[:num_sweeps]:
        pts = read_points(root / sw["path"]).astype(np.float64)
        if remove_close > 0:
            pts = pts[~((np.abs(pts[:, 0]) < remove_close) & (np.abs(pts[:, 1]) < remove_close))]
        m = np.asarray(sw["sensor2lidar"], dtype=np.float64)
        out = np.empty((len(pts), 5), dtype=np.float64)
        out[:, :3] = pts[:, :3] @ m[:3, :3].T + m[:3, 3]
        out[:, 3] = pts[:, 3]
        out[:, 4] = sw["time_lag"]
        parts.append(out.astype(np.float32))
    return np.concatenate(parts, 0)
