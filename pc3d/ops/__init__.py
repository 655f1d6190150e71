"""Compiled ops with validated Python faces. Call these, never ``torch.ops.pc3d`` directly."""
from ._library import load_library

load_library()
from .boxes import iou_3d_rotated, iou_bev_rotated, nms_bev_rotated, points_in_boxes, points_in_boxes_mask  # noqa: E402
from .partition import (FlatWindowGroups, RotatedSets, WindowSegments, flat_window_partition,  # noqa: E402,F401
                        rotated_set_partition, scattered_linear_attention, sort_by_window)
from .voxelize import DynamicVoxels, HardVoxels, scatter_points, voxelize_dynamic, voxelize_hard  # noqa: E402
