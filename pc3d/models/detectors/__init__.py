"""Detectors: short compositions of voxelizer, voxel encoder, (3D backbone), to-BEV, 2D backbone, neck, head."""
from .centerpoint import CenterPoint

__all__ = ["CenterPoint"]
