"""Sparse voxels -> dense bird's-eye-view feature maps."""
from .scatter import BEVScatter

__all__ = ["BEVScatter"]
