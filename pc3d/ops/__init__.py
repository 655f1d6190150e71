"""Compiled ops with validated Python faces. Call these, never ``torch.ops.pc3d`` directly."""
from ._library import load_library

load_library()
from .partition import (FlatWindowGroups, RotatedSets, WindowSegments, flat_window_partition,  # noqa: E402,F401
                        rotated_set_partition, scattered_linear_attention, sort_by_window)
