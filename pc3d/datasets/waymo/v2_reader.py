"""Reads Waymo Open Dataset v2 parquet components: one segment's frames as points and box labels.

``V2Segment(root, split, segment)`` joins, per frame (``key.frame_timestamp_micros``) and laser
(``key.laser_name``), the ``lidar`` range images with the segment's ``lidar_calibration``, the frame's
``vehicle_pose`` and, when the component exists, the ``lidar_pose`` per-pixel poses; labels come from
``lidar_box``. Every file, column and value is checked: a missing file or column, a wrong column type,
a range image whose values do not fill its shape, an unknown box type or a pose for a frame that has no
vehicle pose raises ``ValueError`` naming the file and the field — nothing is skipped silently.
pyarrow is imported only here (``import pc3d`` stays light).
"""
from pathlib import Path

import numpy as np

from . import schema as S
from .range_image import range_image_to_points, row_inclinations

_FLOAT, _INT, _STR, _LIST_FLOAT, _LIST_INT = "float", "int", "string", "list<float>", "list<int>"
_KINDS = {
    S.SEGMENT: _STR, S.TIMESTAMP: _INT, S.LASER: _INT, S.OBJECT_ID: _STR,
    S.RI1_VALUES: _LIST_FLOAT, S.RI1_SHAPE: _LIST_INT, S.RI2_VALUES: _LIST_FLOAT, S.RI2_SHAPE: _LIST_INT,
    S.POSE_VALUES: _LIST_FLOAT, S.POSE_SHAPE: _LIST_INT, S.EXTRINSIC: _LIST_FLOAT,
    S.INCL_MIN: _FLOAT, S.INCL_MAX: _FLOAT, S.INCL_VALUES: _LIST_FLOAT, S.WORLD_FROM_VEHICLE: _LIST_FLOAT,
    S.BOX_HEADING: _FLOAT, S.BOX_TYPE: _INT, S.BOX_NUM_POINTS: _INT, S.BOX_DIFFICULTY: _INT,
    **{c: _FLOAT for c in S.BOX_CENTER + S.BOX_SIZE},
}
LIDAR_COLUMNS = (S.TIMESTAMP, S.LASER, S.RI1_VALUES, S.RI1_SHAPE, S.RI2_VALUES, S.RI2_SHAPE)
POSE_COLUMNS = (S.TIMESTAMP, S.LASER, S.POSE_VALUES, S.POSE_SHAPE)
CALIBRATION_COLUMNS = (S.LASER, S.EXTRINSIC, S.INCL_MIN, S.INCL_MAX, S.INCL_VALUES)
VEHICLE_POSE_COLUMNS = (S.TIMESTAMP, S.WORLD_FROM_VEHICLE)
BOX_COLUMNS = ((S.TIMESTAMP, S.OBJECT_ID) + S.BOX_CENTER + S.BOX_SIZE
               + (S.BOX_HEADING, S.BOX_TYPE, S.BOX_NUM_POINTS, S.BOX_DIFFICULTY))


def _kind(t):
    import pyarrow as pa

    if pa.types.is_floating(t):
        return _FLOAT
    if pa.types.is_integer(t):
        return _INT
    if pa.types.is_string(t) or pa.types.is_large_string(t) or (
            pa.types.is_dictionary(t) and pa.types.is_string(t.value_type)):
        return _STR
    if pa.types.is_list(t) or pa.types.is_fixed_size_list(t) or pa.types.is_large_list(t):
        inner = _kind(t.value_type)
        return f"list<{inner}>"
    return str(t)


def _frame_row_groups(pf, timestamp):
    """Row groups of ``pf`` that may hold rows of ``timestamp`` (from the timestamp column's min/max
    statistics, metadata only); all row groups when statistics are absent."""
    meta = pf.metadata
    groups = []
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        stats = next((rg.column(j).statistics for j in range(rg.num_columns)
                      if rg.column(j).path_in_schema == S.TIMESTAMP), None)
        if stats is None or not stats.has_min_max or stats.min <= timestamp <= stats.max:
            groups.append(g)
    return groups


def read_component(path, columns, timestamp=None):
    """Reads ``columns`` of one component file (rows of one frame when ``timestamp`` is given).

    With a timestamp, only the row groups whose statistics can contain it are decoded (the official
    files and pc3d's writer keep frames in separate row groups), then rows are filtered exactly.
    Raises ``ValueError`` naming the file when it is missing or not parquet, and naming the column when
    one is missing or of the wrong kind (e.g. a string where a float list is expected).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: missing Waymo v2 component file")
    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
    except (pa.ArrowException, OSError) as e:
        raise ValueError(f"{path}: not a readable parquet file ({e})") from e
    for c in columns:
        if c not in schema.names:
            raise ValueError(f"{path}: missing column '{c}'")
        have, want = _kind(schema.field(c).type), _KINDS[c]
        if have != want:
            raise ValueError(f"{path}: column '{c}' is {schema.field(c).type}, expected {want}")
    try:
        if timestamp is None:
            return pf.read(columns=list(columns))
        cols = list(columns) + ([S.TIMESTAMP] if S.TIMESTAMP not in columns else [])
        t = pf.read_row_groups(_frame_row_groups(pf, int(timestamp)), columns=cols)
        return t.filter(pc.equal(t.column(S.TIMESTAMP), pa.scalar(int(timestamp), pa.int64())))
    except (pa.ArrowException, OSError) as e:
        raise ValueError(f"{path}: failed to read columns {list(columns)} ({e})") from e


def _image(table, row, values_col, shape_col, channels, path):
    """Row ``row``'s (H, W, channels) float32 image, or None when the cell is null."""
    vals, shape = table.column(values_col)[row], table.column(shape_col)[row]
    if not vals.is_valid and not shape.is_valid:
        return None
    if not vals.is_valid or not shape.is_valid:
        raise ValueError(f"{path}: '{values_col}' and '{shape_col}' must both be set or both be null")
    shape = shape.as_py()
    if len(shape) != 3 or shape[2] != channels or min(shape) <= 0:
        raise ValueError(f"{path}: '{shape_col}' is {shape}, expected [H, W, {channels}]")
    v = vals.values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    if v.size != shape[0] * shape[1] * shape[2]:
        raise ValueError(f"{path}: '{values_col}' has {v.size} values but '{shape_col}' is {shape} "
                         f"({shape[0] * shape[1] * shape[2]} values)")
    return v.reshape(shape)


class V2Segment:
    """One segment of a v2 split: ``<root>/<split>/<component>/<segment>.parquet``.

    Args:
        root, split, segment: locate the files.
        with_labels: read ``lidar_box`` (required then); False for unlabelled (test) data.
    """

    def __init__(self, root, split, segment, with_labels=True):
        self.segment = segment
        self.paths = {c: Path(root) / split / c / f"{segment}.parquet" for c in S.COMPONENTS}
        self.with_labels = with_labels
        required = [S.LIDAR, S.LIDAR_CALIBRATION, S.VEHICLE_POSE] + ([S.LIDAR_BOX] if with_labels else [])
        for c in required:
            if not self.paths[c].is_file():
                raise ValueError(f"{self.paths[c]}: missing Waymo v2 component file ({c})")
        self.has_pixel_pose = self.paths[S.LIDAR_POSE].is_file()
        self._calibrations = None
        self._poses = None

    def timestamps(self):
        """Sorted list of the frame timestamps (micros) that have LiDAR data."""
        t = read_component(self.paths[S.LIDAR], (S.TIMESTAMP,))
        return sorted(set(t.column(S.TIMESTAMP).to_pylist()))

    def calibrations(self):
        """dict laser_name -> ``schema.LidarCalibration`` (read once)."""
        if self._calibrations is None:
            path = self.paths[S.LIDAR_CALIBRATION]
            t = read_component(path, CALIBRATION_COLUMNS)
            cal = {}
            for i, laser in enumerate(t.column(S.LASER).to_pylist()):
                ext = np.asarray(t.column(S.EXTRINSIC)[i].as_py() or [], dtype=np.float64)
                if ext.size != 16:
                    raise ValueError(f"{path}: '{S.EXTRINSIC}' of laser {laser} has {ext.size} values, expected 16")
                vals = t.column(S.INCL_VALUES)[i].as_py()
                lo, hi = t.column(S.INCL_MIN)[i].as_py(), t.column(S.INCL_MAX)[i].as_py()
                if not vals and (lo is None or hi is None):
                    raise ValueError(f"{path}: laser {laser} has neither '{S.INCL_VALUES}' nor min/max")
                cal[laser] = S.LidarCalibration(laser, ext.reshape(4, 4), lo, hi,
                                                np.asarray(vals, np.float64) if vals else None)
            self._calibrations = cal
        return self._calibrations

    def vehicle_pose(self, timestamp):
        """(4, 4) float64 world_from_vehicle of the frame."""
        if self._poses is None:
            path = self.paths[S.VEHICLE_POSE]
            t = read_component(path, VEHICLE_POSE_COLUMNS)
            poses = {}
            for ts, m in zip(t.column(S.TIMESTAMP).to_pylist(), t.column(S.WORLD_FROM_VEHICLE).to_pylist()):
                if m is None or len(m) != 16:
                    raise ValueError(f"{path}: '{S.WORLD_FROM_VEHICLE}' of frame {ts} is not 16 values")
                poses[ts] = np.asarray(m, np.float64).reshape(4, 4)
            self._poses = poses
        if timestamp not in self._poses:
            raise ValueError(f"{self.paths[S.VEHICLE_POSE]}: no '{S.WORLD_FROM_VEHICLE}' row for frame {timestamp}")
        return self._poses[timestamp]

    def scans(self, timestamp):
        """The frame's ``schema.LidarScan`` list, sorted by laser name."""
        path = self.paths[S.LIDAR]
        t = read_component(path, LIDAR_COLUMNS, timestamp)
        if t.num_rows == 0:
            raise ValueError(f"{path}: no rows for '{S.TIMESTAMP}' = {timestamp}")
        poses = {}
        if self.has_pixel_pose:
            ppath = self.paths[S.LIDAR_POSE]
            pt = read_component(ppath, POSE_COLUMNS, timestamp)
            for i, laser in enumerate(pt.column(S.LASER).to_pylist()):
                poses[laser] = _image(pt, i, S.POSE_VALUES, S.POSE_SHAPE, 6, ppath)
        scans, seen = [], set()
        for i, laser in enumerate(t.column(S.LASER).to_pylist()):
            if laser not in S.LASER_NAMES:
                raise ValueError(f"{path}: '{S.LASER}' = {laser} is not a LaserName (1..5)")
            if laser in seen:
                raise ValueError(f"{path}: frame {timestamp} has two rows for laser {laser}")
            seen.add(laser)
            r1 = _image(t, i, S.RI1_VALUES, S.RI1_SHAPE, 4, path)
            if r1 is None:
                raise ValueError(f"{path}: '{S.RI1_VALUES}' is null for frame {timestamp} laser {laser}")
            r2 = _image(t, i, S.RI2_VALUES, S.RI2_SHAPE, 4, path)
            if r2 is not None and r2.shape != r1.shape:
                raise ValueError(f"{path}: return2 shape {r2.shape} != return1 shape {r1.shape} (laser {laser})")
            pose = poses.get(laser)
            if pose is not None and pose.shape[:2] != r1.shape[:2]:
                raise ValueError(f"{self.paths[S.LIDAR_POSE]}: '{S.POSE_SHAPE}' {list(pose.shape)} does not "
                                 f"match the range image {list(r1.shape)} (frame {timestamp} laser {laser})")
            scans.append(S.LidarScan(laser, r1, r2, pose))
        return sorted(scans, key=lambda s: s.laser_name)

    def points(self, timestamp, returns=(1, 2)):
        """All lasers' points of one frame in the vehicle frame.

        Args:
            timestamp: the frame's ``key.frame_timestamp_micros``.
            returns: which range-image returns to convert (1, 2 or both).
        Returns:
            points: (N, 6) float32 [x, y, z, intensity, elongation, nlz flag], return 1 of every laser
                (ascending laser name), then return 2 of every laser — OpenPCDet's order.
            counts: dict (return, laser_name) -> number of points.
        """
        scans, cal = self.scans(timestamp), self.calibrations()
        frame_pose = None
        out, counts = [], {}
        for ret in returns:
            if ret not in (1, 2):
                raise ValueError(f"returns must be 1 and/or 2, got {ret!r}")
            for s in scans:
                if s.laser_name not in cal:
                    raise ValueError(f"{self.paths[S.LIDAR_CALIBRATION]}: no calibration row for "
                                     f"'{S.LASER}' = {s.laser_name}")
                image = s.return1 if ret == 1 else s.return2
                if image is None:
                    continue
                c = cal[s.laser_name]
                try:
                    incl = row_inclinations(image.shape[0], c.beam_inclination_min, c.beam_inclination_max,
                                            c.beam_inclination_values)
                except ValueError as e:
                    raise ValueError(f"{self.paths[S.LIDAR_CALIBRATION]}: laser {s.laser_name}: {e}") from e
                if s.pixel_pose is not None and frame_pose is None:
                    frame_pose = self.vehicle_pose(timestamp)
                # The pose image exists for the first return only; the second shares it (Waymo's docs).
                pts, _ = range_image_to_points(image, incl, c.extrinsic, s.pixel_pose, frame_pose)
                out.append(pts)
                counts[(ret, s.laser_name)] = len(pts)
        pts = np.concatenate(out, 0) if out else np.zeros((0, 6), np.float32)
        return pts, counts

    def labels(self, timestamp):
        """The frame's ``schema.BoxLabels`` (every type; the dataset maps and filters them)."""
        path = self.paths[S.LIDAR_BOX]
        t = read_component(path, BOX_COLUMNS, timestamp)
        for c in BOX_COLUMNS:
            # difficulty_level is Optional in the official schema: null means UNKNOWN (0).
            if c != S.BOX_DIFFICULTY and t.column(c).null_count:
                raise ValueError(f"{path}: column '{c}' has nulls in frame {timestamp}")
        cols = {c: t.column(c).fill_null(0).to_numpy() if c == S.BOX_DIFFICULTY
                else t.column(c).to_numpy() for c in BOX_COLUMNS if c != S.OBJECT_ID}
        types = cols[S.BOX_TYPE].astype(np.int64)
        bad = ~np.isin(types, [S.TYPE_UNKNOWN, S.TYPE_VEHICLE, S.TYPE_PEDESTRIAN, S.TYPE_SIGN, S.TYPE_CYCLIST])
        if bad.any():
            raise ValueError(f"{path}: column '{S.BOX_TYPE}' has unknown box type {int(types[bad][0])} "
                             f"in frame {timestamp} (known: 0 unknown, 1 vehicle, 2 pedestrian, 3 sign, 4 cyclist)")
        boxes = np.stack([cols[c].astype(np.float64) for c in S.BOX_CENTER + S.BOX_SIZE + (S.BOX_HEADING,)], 1)
        if not np.isfinite(boxes).all():
            raise ValueError(f"{path}: non-finite box values in frame {timestamp}")
        npts = cols[S.BOX_NUM_POINTS].astype(np.int64)
        if (npts < 0).any():
            raise ValueError(f"{path}: column '{S.BOX_NUM_POINTS}' is negative in frame {timestamp}")
        return S.BoxLabels(boxes.reshape(-1, 7), types, npts, cols[S.BOX_DIFFICULTY].astype(np.int64),
                           [str(x) for x in t.column(S.OBJECT_ID).to_pylist()])


def list_segments(root, split):
    """Sorted segment names of a v2 split (from the ``lidar`` component's file names)."""
    d = Path(root) / split / S.LIDAR
    if not d.is_dir():
        raise ValueError(f"{d}: missing Waymo v2 component directory '{S.LIDAR}'")
    return sorted(p.stem for p in d.glob("*.parquet"))
