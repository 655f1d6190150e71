"""Detectors: short compositions of voxelizer, voxel encoder, (3D backbone), to-BEV, 2D backbone, neck, head."""
from .centerpoint import CenterPoint
from .tr3d import TR3D

__all__ = ["CenterPoint", "TR3D"]
