"""Compiled ops with validated Python faces. Call these, never ``torch.ops.pc3d`` directly."""
from ._library import load_library

load_library()
from .voxelize import DynamicVoxels, HardVoxels, scatter_points, voxelize_dynamic, voxelize_hard  # noqa: E402
