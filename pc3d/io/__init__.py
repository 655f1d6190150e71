"""Reading your own point clouds: files and bags in, the model's input rows out.

* :func:`read_points` / :func:`read_frames` — ``.bin``, ``.npy``, ``.npz``, ``.pcd``, ``.ply``, ``.las``,
  ``.laz`` files and ROS 1 / ROS 2 bags (``sensor_msgs/PointCloud2``) as :class:`RawCloud` (named
  float32 columns). The optional format libraries (pypcd4, plyfile, laspy + lazrs, rosbags) are imported
  only when such a file is read.
* :func:`write_points` / :func:`write_bag` — the same formats out (conversion, tests).
* :func:`prepare_points` — column map, intensity scale, units, axes, ground plane and range checks for
  a model's :class:`InputSpec` (:func:`input_spec_from_config`).
"""
from .formats import (POINT_EXTENSIONS, PointCloudError, RawCloud, expand_inputs, is_bag, parse_columns, read_frames,
                      read_points, write_points)
from .prepare import (GroundPlane, InputSpec, PrepareReport, estimate_ground, ground_alignment, input_spec_from_config,
                      make_transform, prepare_points)


def write_bag(*args, **kwargs):
    """:func:`pc3d.io.rosbag.write_bag` (imported on use: it needs rosbags)."""
    from .rosbag import write_bag as _write_bag

    return _write_bag(*args, **kwargs)


__all__ = ["POINT_EXTENSIONS", "PointCloudError", "RawCloud", "expand_inputs", "is_bag", "parse_columns",
           "read_frames", "read_points", "write_points", "write_bag", "GroundPlane", "InputSpec", "PrepareReport",
           "estimate_ground", "ground_alignment", "input_spec_from_config", "make_transform", "prepare_points"]
