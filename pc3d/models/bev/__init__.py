"""Sparse voxels -> dense bird's-eye-view feature maps."""
from .pillar_scatter3d import PointPillarScatter3d
from .scatter import BEVScatter

__all__ = ["BEVScatter", "PointPillarScatter3d"]
