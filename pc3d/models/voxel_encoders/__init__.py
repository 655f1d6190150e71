"""Voxel encoders: points grouped by voxel -> one feature vector per non-empty voxel."""
from .dyn_pillar_vfe import DynPillarVFE3D
from .dynamic_vfe import DynamicVFE
from .pillar_encoder import PillarEncoder

__all__ = ["DynamicVFE", "PillarEncoder", "DynPillarVFE3D"]
