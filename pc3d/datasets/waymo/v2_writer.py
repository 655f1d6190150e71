"""Writes Waymo Open Dataset v2 parquet components (the official layout) from in-memory records.

``write_segment(root, split, calibrations, frames)`` writes, for one segment,
``<root>/<split>/{lidar,lidar_calibration,lidar_box,vehicle_pose,lidar_pose}/<segment>.parquet`` with
the official column names and arrow types (``schema.arrow_schema``). Used by the simulator bridge
(``simulated.py``) and by tests; real users read the official release with ``v2_reader``.
"""
from pathlib import Path

import numpy as np

from . import schema as S


def _flat_image(image, channels, name):
    """(H, W, C) -> (values list float32, shape [H, W, C])."""
    a = np.asarray(image, dtype=np.float32)
    if a.ndim != 3 or a.shape[2] != channels:
        raise ValueError(f"{name} must be (H, W, {channels}), got {a.shape}")
    return a.reshape(-1), list(a.shape)


def _mat4(m, name):
    m = np.asarray(m, dtype=np.float64)
    if m.shape != (4, 4):
        raise ValueError(f"{name} must be (4, 4), got {m.shape}")
    return m.reshape(-1)


def _table(component, columns):
    import pyarrow as pa

    sch = S.arrow_schema(component)
    return pa.table({f.name: pa.array(columns[f.name], type=f.type) for f in sch}, schema=sch)


def _write(root, split, component, segment, columns):
    """Writes one component file; frame-keyed components get one row group per frame so a reader
    decodes only the frame it needs (row-group statistics on the timestamp)."""
    import pyarrow.parquet as pq

    path = Path(root) / split / component / f"{segment}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    table = _table(component, columns)
    if S.TIMESTAMP not in table.column_names or table.num_rows == 0:
        pq.write_table(table, path)
        return path
    ts = np.asarray(columns[S.TIMESTAMP], dtype=np.int64)
    order = np.argsort(ts, kind="stable")
    table, ts = table.take(order), ts[order]
    cuts = np.flatnonzero(np.diff(ts)) + 1
    with pq.ParquetWriter(path, table.schema) as w:
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(ts)]):
            w.write_table(table.slice(int(a), int(b - a)))
    return path


def calibration_columns(segment, calibrations):
    """Columns of the ``lidar_calibration`` component for a list of ``schema.LidarCalibration``."""
    cols = {k: [] for k in (S.SEGMENT, S.LASER, S.EXTRINSIC, S.INCL_MIN, S.INCL_MAX, S.INCL_VALUES)}
    for c in calibrations:
        cols[S.SEGMENT].append(segment)
        cols[S.LASER].append(int(c.laser_name))
        cols[S.EXTRINSIC].append(_mat4(c.extrinsic, f"laser {c.laser_name} extrinsic"))
        cols[S.INCL_MIN].append(float(c.beam_inclination_min))
        cols[S.INCL_MAX].append(float(c.beam_inclination_max))
        vals = c.beam_inclination_values
        cols[S.INCL_VALUES].append(None if vals is None else np.asarray(vals, np.float64))
    return cols


def lidar_columns(frames):
    """Columns of the ``lidar`` and ``lidar_pose`` components for a list of ``schema.FrameRecord``."""
    keys = (S.SEGMENT, S.TIMESTAMP, S.LASER)
    lidar = {k: [] for k in keys + (S.RI1_VALUES, S.RI1_SHAPE, S.RI2_VALUES, S.RI2_SHAPE)}
    pose = {k: [] for k in keys + (S.POSE_VALUES, S.POSE_SHAPE)}
    for f in frames:
        for scan in f.scans:
            tag = f"frame {f.timestamp_micros} laser {scan.laser_name}"
            key = (f.segment, int(f.timestamp_micros), int(scan.laser_name))
            for k, v in zip(keys, key):
                lidar[k].append(v)
            v1, s1 = _flat_image(scan.return1, 4, f"{tag} return1")
            lidar[S.RI1_VALUES].append(v1)
            lidar[S.RI1_SHAPE].append(s1)
            if scan.return2 is None:  # the official files store an empty second return as null
                lidar[S.RI2_VALUES].append(None)
                lidar[S.RI2_SHAPE].append(None)
            else:
                v2, s2 = _flat_image(scan.return2, 4, f"{tag} return2")
                lidar[S.RI2_VALUES].append(v2)
                lidar[S.RI2_SHAPE].append(s2)
            if scan.pixel_pose is not None:
                for k, v in zip(keys, key):
                    pose[k].append(v)
                pv, ps = _flat_image(scan.pixel_pose, 6, f"{tag} pixel_pose")
                pose[S.POSE_VALUES].append(pv)
                pose[S.POSE_SHAPE].append(ps)
    return lidar, pose


def box_columns(frames):
    """Columns of the ``lidar_box`` component (frames without labels contribute no rows)."""
    names = ((S.SEGMENT, S.TIMESTAMP, S.OBJECT_ID) + S.BOX_CENTER + S.BOX_SIZE
             + (S.BOX_HEADING, S.BOX_TYPE, S.BOX_NUM_POINTS, S.BOX_NUM_TOP_POINTS)
             + S.BOX_SPEED + S.BOX_ACCEL + (S.BOX_DIFFICULTY, S.BOX_TRACKING_DIFFICULTY))
    cols = {k: [] for k in names}
    for f in frames:
        lab = f.labels
        if lab is None:
            continue
        boxes = np.asarray(lab.boxes, dtype=np.float64).reshape(-1, 7)
        m = len(boxes)
        for name, arr in (("types", lab.types), ("num_points", lab.num_points),
                          ("difficulty", lab.difficulty), ("object_ids", lab.object_ids)):
            if len(arr) != m:
                raise ValueError(f"frame {f.timestamp_micros}: labels.{name} has {len(arr)} rows, boxes {m}")
        top = lab.num_points if lab.num_top_points is None else lab.num_top_points
        cols[S.SEGMENT] += [f.segment] * m
        cols[S.TIMESTAMP] += [int(f.timestamp_micros)] * m
        cols[S.OBJECT_ID] += [str(i) for i in lab.object_ids]
        for j, k in enumerate(S.BOX_CENTER + S.BOX_SIZE + (S.BOX_HEADING,)):
            cols[k] += boxes[:, j].tolist()
        cols[S.BOX_TYPE] += np.asarray(lab.types, np.int64).tolist()
        cols[S.BOX_NUM_POINTS] += np.asarray(lab.num_points, np.int64).tolist()
        cols[S.BOX_NUM_TOP_POINTS] += np.asarray(top, np.int64).tolist()
        for k in S.BOX_SPEED + S.BOX_ACCEL:
            cols[k] += [0.0] * m
        cols[S.BOX_DIFFICULTY] += np.asarray(lab.difficulty, np.int64).tolist()
        cols[S.BOX_TRACKING_DIFFICULTY] += np.asarray(lab.difficulty, np.int64).tolist()
    return cols


def write_segment(root, split, calibrations, frames):
    """Writes one segment's five components.

    Args:
        root: dataset root; files go to ``<root>/<split>/<component>/<segment>.parquet``.
        split: e.g. 'training', 'validation'.
        calibrations: list of ``schema.LidarCalibration`` (one per laser).
        frames: list of ``schema.FrameRecord`` of the same segment.
    Returns:
        dict component -> written path (``lidar_pose`` only when some scan has a pixel pose).
    """
    if not frames:
        raise ValueError("write_segment needs at least one frame")
    segment = frames[0].segment
    if any(f.segment != segment for f in frames):
        raise ValueError("all frames of write_segment must share one segment name")
    lidar, pose = lidar_columns(frames)
    vp = {S.SEGMENT: [f.segment for f in frames], S.TIMESTAMP: [int(f.timestamp_micros) for f in frames],
          S.WORLD_FROM_VEHICLE: [_mat4(f.world_from_vehicle, "world_from_vehicle") for f in frames]}
    out = {
        S.LIDAR: _write(root, split, S.LIDAR, segment, lidar),
        S.LIDAR_CALIBRATION: _write(root, split, S.LIDAR_CALIBRATION, segment,
                                    calibration_columns(segment, calibrations)),
        S.VEHICLE_POSE: _write(root, split, S.VEHICLE_POSE, segment, vp),
        S.LIDAR_BOX: _write(root, split, S.LIDAR_BOX, segment, box_columns(frames)),
    }
    if pose[S.SEGMENT]:
        out[S.LIDAR_POSE] = _write(root, split, S.LIDAR_POSE, segment, pose)
    return out
