"""Waymo range images <-> points (numpy; no TensorFlow).

Conventions (the official ``range_image_utils`` / ``v2/perception/utils/lidar_utils``):

- a range image is ``(H, W, C)`` float32, channel 0 the range in metres; a pixel is a point iff
  range > 0;
- rows: the calibration stores beam inclinations ascending (lowest beam first) — either explicitly or
  as min/max with row ``i`` of the ascending list at ``min + (i + 0.5) / H * (max - min)`` — and the
  range image's row 0 is the *highest* beam, so the row order is the stored order reversed;
- columns: column ``c`` looks at sensor-frame azimuth ``pi - (c + 0.5) * 2 pi / W - yaw`` where
  ``yaw = atan2(R[1, 0], R[0, 0])`` of the extrinsic: columns sweep clockwise from the vehicle's rear,
  at azimuths that are fixed in the vehicle frame whatever the sensor's mounting yaw;
- a point: ``p_sensor = r (cos az cos inc, sin az cos inc, sin inc)``, ``p_vehicle = extrinsic p_sensor``;
  with a per-pixel pose (TOP lidar), ``p = frame_pose^-1 pixel_pose p_vehicle``: the pixel's vehicle
  pose at its capture time is world_from_vehicle built from ``[roll, pitch, yaw, x, y, z]`` with
  ``R = Rz(yaw) Ry(pitch) Rx(roll)``.

Everything is computed in float64 (Waymo's own code upcasts the extrinsic and inclinations too).
"""
import numpy as np


def uniform_inclinations(inclination_min, inclination_max, height):
    """(H,) float64 ascending beam inclinations, uniform between min and max (pixel centres)."""
    if height <= 0:
        raise ValueError(f"range image height must be > 0, got {height}")
    i = np.arange(height, dtype=np.float64)
    return float(inclination_min) + (i + 0.5) / height * (float(inclination_max) - float(inclination_min))


def row_inclinations(height, inclination_min=None, inclination_max=None, values=None):
    """(H,) float64 inclination of each range-image row (row 0 = highest beam).

    Args:
        height: H, the range image's rows.
        inclination_min, inclination_max: radians, used when ``values`` is None or empty.
        values: (H,) ascending explicit inclinations (Waymo's ``beam_inclination.values``) or None.
    """
    if values is not None and len(values) > 0:
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (height,):
            raise ValueError(f"beam_inclination.values has {values.shape[0]} entries but the range image "
                             f"has {height} rows")
        return values[::-1].copy()
    if inclination_min is None or inclination_max is None:
        raise ValueError("need beam_inclination.values or both beam_inclination.min and .max")
    return uniform_inclinations(inclination_min, inclination_max, height)[::-1].copy()


def azimuth_correction(extrinsic):
    """The extrinsic's yaw ``atan2(R[1, 0], R[0, 0])`` (float)."""
    e = np.asarray(extrinsic, dtype=np.float64)
    return float(np.arctan2(e[1, 0], e[0, 0]))


def column_azimuths(width, extrinsic):
    """(W,) float64 sensor-frame azimuth of each column (see the module docstring)."""
    c = np.arange(width, dtype=np.float64)
    return np.pi - (c + 0.5) * (2.0 * np.pi / width) - azimuth_correction(extrinsic)


def rotation_from_rpy(rpy):
    """(..., 3) [roll, pitch, yaw] -> (..., 3, 3) rotation ``Rz(yaw) @ Ry(pitch) @ Rx(roll)``."""
    rpy = np.asarray(rpy, dtype=np.float64)
    cr, sr = np.cos(rpy[..., 0]), np.sin(rpy[..., 0])
    cp, sp = np.cos(rpy[..., 1]), np.sin(rpy[..., 1])
    cy, sy = np.cos(rpy[..., 2]), np.sin(rpy[..., 2])
    r = np.empty(rpy.shape[:-1] + (3, 3))
    r[..., 0, 0], r[..., 0, 1], r[..., 0, 2] = cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr
    r[..., 1, 0], r[..., 1, 1], r[..., 1, 2] = sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr
    r[..., 2, 0], r[..., 2, 1], r[..., 2, 2] = -sp, cp * sr, cp * cr
    return r


def rotate_rpy(rpy, points):
    """Rotates (N, 3) ``points`` by ``rotation_from_rpy(rpy)`` for (N, 3) ``rpy`` (one rotation per
    point) as three elementwise axis rotations (x, then y, then z): no (N, 3, 3) matrices."""
    rpy = np.asarray(rpy, dtype=np.float64)
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    c, s = np.cos(rpy[:, 0]), np.sin(rpy[:, 0])
    y, z = c * y - s * z, s * y + c * z
    c, s = np.cos(rpy[:, 1]), np.sin(rpy[:, 1])
    x, z = c * x + s * z, -s * x + c * z
    c, s = np.cos(rpy[:, 2]), np.sin(rpy[:, 2])
    x, y = c * x - s * y, s * x + c * y
    return np.stack([x, y, z], -1)


def rpy_from_rotation(rot):
    """(..., 3, 3) rotation -> (..., 3) [roll, pitch, yaw], the inverse of ``rotation_from_rpy``."""
    rot = np.asarray(rot, dtype=np.float64)
    yaw = np.arctan2(rot[..., 1, 0], rot[..., 0, 0])
    pitch = -np.arcsin(np.clip(rot[..., 2, 0], -1.0, 1.0))
    roll = np.arctan2(rot[..., 2, 1], rot[..., 2, 2])
    return np.stack([roll, pitch, yaw], -1)


def _affine(points, rot, trans):
    """(N, 3) ``points @ rot.T + trans`` as nine elementwise products: BLAS matmul with an inner
    dimension of 3 is slow and thread-contended inside DataLoader workers."""
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    return np.stack([rot[i, 0] * x + rot[i, 1] * y + rot[i, 2] * z + trans[i] for i in range(3)], -1)


def _check_image(name, image, channels):
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] < channels:
        raise ValueError(f"{name} must be (H, W, >={channels}), got shape {image.shape}")
    return image


def range_image_to_points(range_image, inclinations, extrinsic, pixel_pose=None, frame_pose=None):
    """Converts one range image return to points in the vehicle frame.

    Args:
        range_image: (H, W, 4) float [range, intensity, elongation, nlz flag].
        inclinations: (H,) float64 inclination of each row (row 0 highest; see ``row_inclinations``).
        extrinsic: (4, 4) sensor -> vehicle.
        pixel_pose: optional (H, W, 6) [roll, pitch, yaw, x, y, z] world_from_vehicle of each pixel.
        frame_pose: (4, 4) world_from_vehicle of the frame; required with ``pixel_pose``.
    Returns:
        points: (N, 6) float32 [x, y, z, intensity, elongation, nlz flag] for the pixels with range > 0,
            in row-major pixel order.
        pixel_index: (N, 2) int64 [row, column] of each point.
    """
    ri = _check_image("range_image", range_image, 4)
    h, w = ri.shape[:2]
    incl = np.asarray(inclinations, dtype=np.float64)
    if incl.shape != (h,):
        raise ValueError(f"inclinations must be ({h},) for a range image of {h} rows, got {incl.shape}")
    ext = np.asarray(extrinsic, dtype=np.float64)
    if ext.shape != (4, 4):
        raise ValueError(f"extrinsic must be (4, 4), got {ext.shape}")
    rows, cols = np.nonzero(ri[..., 0] > 0)
    r = ri[rows, cols, 0].astype(np.float64)
    # Trigonometry per row and per column (H + W values), gathered per point.
    az = column_azimuths(w, ext)
    cos_inc, sin_inc = np.cos(incl)[rows], np.sin(incl)[rows]
    rc = r * cos_inc
    p = np.stack([np.cos(az)[cols] * rc, np.sin(az)[cols] * rc, sin_inc * r], -1)
    p = _affine(p, ext[:3, :3], ext[:3, 3])
    if pixel_pose is not None:
        pose = _check_image("pixel_pose", pixel_pose, 6)
        if pose.shape[:2] != (h, w):
            raise ValueError(f"pixel_pose is {pose.shape[:2]} but the range image is {(h, w)}")
        if frame_pose is None:
            raise ValueError("frame_pose (world_from_vehicle) is required with pixel_pose")
        fp = np.asarray(frame_pose, dtype=np.float64)
        px = pose[rows, cols].astype(np.float64)
        # Into the world with the pixel's own vehicle pose, then back with the frame's.
        world = rotate_rpy(px[:, :3], p) + px[:, 3:6]
        p = _affine(world - fp[:3, 3], fp[:3, :3].T, np.zeros(3))  # R^T (world - t), R orthonormal
    feats = ri[rows, cols, 1:4].astype(np.float32)
    return np.concatenate([p.astype(np.float32), feats], 1), np.stack([rows, cols], 1).astype(np.int64)


def points_to_range_image(points, inclinations, extrinsic, width, features=None):
    """Builds a range image from vehicle-frame points (the inverse of ``range_image_to_points`` without
    a per-pixel pose): nearest row by inclination, nearest column by azimuth; where several points
    fall in one pixel the closest wins (as Waymo's own builder does).

    Args:
        points: (N, 3) float vehicle-frame xyz.
        inclinations: (H,) float64 row inclinations (row 0 highest).
        extrinsic: (4, 4) sensor -> vehicle.
        width: W.
        features: optional (N, K) float channels 1..K of the image (e.g. intensity, elongation, nlz).
    Returns:
        image: (H, W, 1 + K) float32, empty pixels have range -1 and features 0.
        pixel_index: (N, 2) int64 [row, column] each point landed in.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    incl = np.asarray(inclinations, dtype=np.float64)
    ext = np.asarray(extrinsic, dtype=np.float64)
    feats = np.zeros((len(pts), 0)) if features is None else np.asarray(features, dtype=np.float64)
    if feats.ndim != 2 or len(feats) != len(pts):
        raise ValueError(f"features must be (N={len(pts)}, K), got {feats.shape}")
    sensor = _affine(pts - ext[:3, 3], ext[:3, :3].T, np.zeros(3))  # vehicle -> sensor with R^T
    r = np.linalg.norm(sensor, axis=1)
    inc = np.arctan2(sensor[:, 2], np.linalg.norm(sensor[:, :2], axis=1))
    rows = np.argmin(np.abs(inc[:, None] - incl[None, :]), axis=1)
    az = np.arctan2(sensor[:, 1], sensor[:, 0]) + azimuth_correction(ext)
    az = (az + np.pi) % (2 * np.pi) - np.pi
    cols = np.rint(width - 0.5 - (az + np.pi) / (2 * np.pi) * width).astype(np.int64) % width
    image = np.zeros((len(incl), width, 1 + feats.shape[1]), dtype=np.float32)
    image[..., 0] = -1.0
    flat = rows * width + cols
    order = np.lexsort((r, flat))  # by pixel, closest first
    first = order[np.r_[True, flat[order][1:] != flat[order][:-1]]] if len(order) else order
    image[rows[first], cols[first], 0] = r[first]
    image[rows[first], cols[first], 1:] = feats[first]
    return image, np.stack([rows, cols], 1)
