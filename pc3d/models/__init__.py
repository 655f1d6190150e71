"""pc3d's models, registered in ``pc3d.registry.MODELS`` (the registry imports this package on first use).

Importing this package does not import spconv: the sparse-conv backbone imports it when built.
"""
from . import backbones2d, backbones3d, bev, detectors, heads, voxel_encoders  # noqa: F401
from .data_preprocessor import PointsDataPreprocessor
from .voxelizers import DynamicVoxelizer, HardVoxelizer

__all__ = ["PointsDataPreprocessor", "DynamicVoxelizer", "HardVoxelizer"]
