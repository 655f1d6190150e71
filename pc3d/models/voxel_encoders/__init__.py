"""Voxel encoders: points grouped by voxel -> one feature vector per non-empty voxel."""
from .dynamic_vfe import DynamicVFE
from .pillar_encoder import PillarEncoder

__all__ = ["DynamicVFE", "PillarEncoder"]
