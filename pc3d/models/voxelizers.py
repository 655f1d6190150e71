"""Voxelizers: the batch's concatenated points -> voxels, as parameter-free modules a config can name.

Both take ``points: (N, 1 + C) float32`` with column 0 the sample index in the batch (collate_batch's
layout) and columns 1.. = x, y, z, features; they call the compiled ops of ``pc3d.ops``.
"""
from typing import Dict, Sequence

import torch
from torch import nn

from pc3d.registry import MODELS

from .structures import grid_shape


def _split_batch_column(points: torch.Tensor):
    if points.dim() != 2 or points.shape[1] < 4:
        raise ValueError(f"points must be (N, 1 + C) with C >= 3 [b, x, y, z, ...], got {tuple(points.shape)}")
    return points[:, 1:].contiguous(), points[:, 0].long()


@MODELS.register_module()
class HardVoxelizer(nn.Module):
    """At most ``max_points`` points in each of at most ``max_voxels`` voxels per sample (PointPillars).

    Args:
        voxel_size: (vx, vy, vz) metres; a pillar has vz = the full z extent of ``pc_range``.
        pc_range: [x0, y0, z0, x1, y1, z1] metres; points outside are dropped.
        max_points: P, points kept per voxel (first seen).
        max_voxels: per sample, (train, test); voxels beyond are dropped in first-seen order.
    """

    def __init__(self, voxel_size: Sequence[float], pc_range: Sequence[float], max_points: int = 32,
                 max_voxels: Sequence[int] = (30000, 40000)):
        super().__init__()
        self.voxel_size = [float(v) for v in voxel_size]
        self.pc_range = [float(v) for v in pc_range]
        self.max_points = int(max_points)
        self.max_voxels = tuple(int(v) for v in max_voxels)
        self.spatial_shape = grid_shape(self.pc_range, self.voxel_size)

    def forward(self, points: torch.Tensor, batch_size: int) -> Dict[str, torch.Tensor]:
        """Returns dict: ``voxels (V, P, C)`` float32 (zero padded), ``coords (V, 4)`` int32 (b, z, y, x),
        ``num_points (V,)`` int32, plus ``spatial_shape`` (D, H, W) and ``batch_size``."""
        from pc3d.ops import voxelize_hard

        xyz_feats, batch_idx = _split_batch_column(points)
        max_voxels = self.max_voxels[0] if self.training else self.max_voxels[1]
        voxels, coords, num_points = voxelize_hard(xyz_feats, self.voxel_size, self.pc_range, self.max_points,
                                                   max_voxels, batch_idx=batch_idx)
        return dict(voxels=voxels, coords=coords, num_points=num_points, spatial_shape=self.spatial_shape,
                    batch_size=batch_size)


@MODELS.register_module()
class DynamicVoxelizer(nn.Module):
    """Every in-range point is kept and mapped to its voxel (no per-voxel cap; dynamic voxelization).

    Args:
        voxel_size: (vx, vy, vz) metres.
        pc_range: [x0, y0, z0, x1, y1, z1] metres; points outside get voxel -1 and are dropped.
    """

    def __init__(self, voxel_size: Sequence[float], pc_range: Sequence[float]):
        super().__init__()
        self.voxel_size = [float(v) for v in voxel_size]
        self.pc_range = [float(v) for v in pc_range]
        self.spatial_shape = grid_shape(self.pc_range, self.voxel_size)

    def forward(self, points: torch.Tensor, batch_size: int) -> Dict[str, torch.Tensor]:
        """Returns dict: ``points (N', C)`` the in-range points, ``point2voxel (N',)`` int64 voxel row of
        each, ``coords (V, 4)`` int32 (b, z, y, x), plus ``spatial_shape`` and ``batch_size``."""
        from pc3d.ops import voxelize_dynamic

        xyz_feats, batch_idx = _split_batch_column(points)
        dv = voxelize_dynamic(xyz_feats, self.voxel_size, self.pc_range, batch_idx=batch_idx)
        keep = dv.point2voxel >= 0
        return dict(points=xyz_feats[keep], point2voxel=dv.point2voxel[keep], coords=dv.coords,
                    spatial_shape=self.spatial_shape, batch_size=batch_size)
