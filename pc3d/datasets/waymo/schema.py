"""Waymo Open Dataset v2 layout: component directories, column names, arrow types, enums.

Learned from the official ``waymo_open_dataset/v2`` package (``component.py`` flattens each
component dataclass into ``key.<field>`` columns for keys and ``[<ComponentClass>].<a>.<b>`` columns
for values). One parquet file per segment per component:
``<root>/<split>/<component>/<segment_context_name>.parquet``.

The in-memory records the reader returns and the writer takes (plain dataclasses of numpy arrays) are
defined here too, so reader and writer share one definition of the format.
"""
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

# Component directory names of the official release.
LIDAR = "lidar"
LIDAR_CALIBRATION = "lidar_calibration"
LIDAR_BOX = "lidar_box"
VEHICLE_POSE = "vehicle_pose"
LIDAR_POSE = "lidar_pose"
COMPONENTS = (LIDAR, LIDAR_CALIBRATION, LIDAR_BOX, VEHICLE_POSE, LIDAR_POSE)

# Key columns.
SEGMENT = "key.segment_context_name"
TIMESTAMP = "key.frame_timestamp_micros"
LASER = "key.laser_name"
OBJECT_ID = "key.laser_object_id"

# [LiDARComponent]: two range images per laser and frame, each values (H*W*4 float32) + shape [H, W, 4].
RI1_VALUES = "[LiDARComponent].range_image_return1.values"
RI1_SHAPE = "[LiDARComponent].range_image_return1.shape"
RI2_VALUES = "[LiDARComponent].range_image_return2.values"
RI2_SHAPE = "[LiDARComponent].range_image_return2.shape"
# [LiDARPoseComponent]: per-pixel vehicle pose [H, W, 6] (roll, pitch, yaw, x, y, z), first return only.
POSE_VALUES = "[LiDARPoseComponent].range_image_return1.values"
POSE_SHAPE = "[LiDARPoseComponent].range_image_return1.shape"
# [LiDARCalibrationComponent]: per segment and laser (no timestamp key).
EXTRINSIC = "[LiDARCalibrationComponent].extrinsic.transform"
INCL_MIN = "[LiDARCalibrationComponent].beam_inclination.min"
INCL_MAX = "[LiDARCalibrationComponent].beam_inclination.max"
INCL_VALUES = "[LiDARCalibrationComponent].beam_inclination.values"
# [VehiclePoseComponent]: world_from_vehicle, row-major 4x4.
WORLD_FROM_VEHICLE = "[VehiclePoseComponent].world_from_vehicle.transform"
# [LiDARBoxComponent]: boxes in the vehicle frame of the frame.
_B = "[LiDARBoxComponent]"
BOX_CENTER = tuple(f"{_B}.box.center.{a}" for a in "xyz")
BOX_SIZE = tuple(f"{_B}.box.size.{a}" for a in "xyz")
BOX_HEADING = f"{_B}.box.heading"
BOX_TYPE = f"{_B}.type"
BOX_NUM_POINTS = f"{_B}.num_lidar_points_in_box"
BOX_NUM_TOP_POINTS = f"{_B}.num_top_lidar_points_in_box"
BOX_SPEED = tuple(f"{_B}.speed.{a}" for a in "xyz")
BOX_ACCEL = tuple(f"{_B}.acceleration.{a}" for a in "xyz")
BOX_DIFFICULTY = f"{_B}.difficulty_level.detection"
BOX_TRACKING_DIFFICULTY = f"{_B}.difficulty_level.tracking"

# LaserName enum: TOP has the per-pixel pose range image.
LASER_NAMES = {1: "TOP", 2: "FRONT", 3: "SIDE_LEFT", 4: "SIDE_RIGHT", 5: "REAR"}
TOP = 1
# BoxType enum -> pc3d label (index into CLASSES); UNKNOWN (0) and SIGN (3) are not detection classes.
TYPE_UNKNOWN, TYPE_VEHICLE, TYPE_PEDESTRIAN, TYPE_SIGN, TYPE_CYCLIST = 0, 1, 2, 3, 4
TYPE_TO_LABEL = {TYPE_VEHICLE: 0, TYPE_PEDESTRIAN: 1, TYPE_CYCLIST: 2}
DROPPED_TYPES = (TYPE_UNKNOWN, TYPE_SIGN)
LABEL_TO_TYPE = np.array([TYPE_VEHICLE, TYPE_PEDESTRIAN, TYPE_CYCLIST], dtype=np.int64)


def arrow_schema(component):
    """The ``pyarrow.Schema`` of a component's parquet file (official column names and types)."""
    import pyarrow as pa

    f32s, f64, i8, i64, s = pa.list_(pa.float32()), pa.float64(), pa.int8(), pa.int64(), pa.string()
    shape3 = pa.list_(pa.int32(), 3)
    mat4 = pa.list_(pa.float64(), 16)
    fields = {
        LIDAR: [(SEGMENT, s), (TIMESTAMP, i64), (LASER, i8), (RI1_VALUES, f32s), (RI1_SHAPE, shape3),
                (RI2_VALUES, f32s), (RI2_SHAPE, shape3)],
        LIDAR_POSE: [(SEGMENT, s), (TIMESTAMP, i64), (LASER, i8), (POSE_VALUES, f32s), (POSE_SHAPE, shape3)],
        LIDAR_CALIBRATION: [(SEGMENT, s), (LASER, i8), (EXTRINSIC, mat4), (INCL_MIN, f64), (INCL_MAX, f64),
                            (INCL_VALUES, pa.list_(f64))],
        VEHICLE_POSE: [(SEGMENT, s), (TIMESTAMP, i64), (WORLD_FROM_VEHICLE, mat4)],
        LIDAR_BOX: ([(SEGMENT, s), (TIMESTAMP, i64), (OBJECT_ID, s)]
                    + [(c, f64) for c in BOX_CENTER + BOX_SIZE] + [(BOX_HEADING, f64), (BOX_TYPE, i8),
                                                                  (BOX_NUM_POINTS, i64), (BOX_NUM_TOP_POINTS, i64)]
                    + [(c, f64) for c in BOX_SPEED + BOX_ACCEL]
                    + [(BOX_DIFFICULTY, i8), (BOX_TRACKING_DIFFICULTY, i8)]),
    }[component]
    return pa.schema(fields)


@dataclass
class LidarCalibration:
    """One laser's calibration.

    extrinsic: (4, 4) float64 sensor -> vehicle transform.
    beam_inclination_min / _max: float radians (used when ``beam_inclination_values`` is None: the rows
        are then uniform between them).
    beam_inclination_values: (H,) float64 radians, ascending (lowest beam first, as stored by Waymo;
        range-image row 0 is the *highest* beam), or None.
    """
    laser_name: int
    extrinsic: np.ndarray
    beam_inclination_min: float
    beam_inclination_max: float
    beam_inclination_values: Optional[np.ndarray] = None


@dataclass
class LidarScan:
    """One laser's range images in one frame.

    return1, return2: (H, W, 4) float32 [range, intensity, elongation, no-label-zone flag]; a pixel
        with range <= 0 is empty; nlz flag > 0 marks a point in a no-label zone (Waymo uses 1 / -1).
    pixel_pose: (H, W, 6) float32 [roll, pitch, yaw, x, y, z] world_from_vehicle per pixel (TOP only),
        or None.
    """
    laser_name: int
    return1: np.ndarray
    return2: Optional[np.ndarray] = None
    pixel_pose: Optional[np.ndarray] = None


@dataclass
class BoxLabels:
    """A frame's box labels (M boxes), vehicle frame.

    boxes: (M, 7) float64 [x, y, z, length (dx), width (dy), height (dz), heading].
    types: (M,) int64 Waymo BoxType (1 vehicle, 2 pedestrian, 3 sign, 4 cyclist).
    num_points / num_top_points: (M,) int64 LiDAR points in the box (all lasers / TOP only).
    difficulty: (M,) int64 detection difficulty level (0 unknown, 1, 2).
    object_ids: (M,) str unique per frame.
    """
    boxes: np.ndarray
    types: np.ndarray
    num_points: np.ndarray
    difficulty: np.ndarray
    object_ids: List[str]
    num_top_points: Optional[np.ndarray] = None

    @staticmethod
    def empty():
        return BoxLabels(np.zeros((0, 7)), np.zeros(0, np.int64), np.zeros(0, np.int64),
                         np.zeros(0, np.int64), [])


@dataclass
class FrameRecord:
    """One frame of a segment: its pose, every laser's scan and the labels.

    world_from_vehicle: (4, 4) float64.
    """
    segment: str
    timestamp_micros: int
    world_from_vehicle: np.ndarray
    scans: List[LidarScan] = field(default_factory=list)
    labels: Optional[BoxLabels] = None
