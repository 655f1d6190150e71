"""The sparse voxel batch that flows between voxel encoder, 3D backbone and the to-BEV stage."""
from dataclasses import dataclass
from typing import Tuple

import torch


@dataclass
class SparseVoxels:
    """Non-empty voxels of a batch of point clouds.

    Attributes:
        feats: (V, C) float32 per-voxel features.
        coords: (V, 4) int32 voxel indices (b, z, y, x), spconv's order.
        spatial_shape: (D, H, W) grid size in voxels (z, y, x).
        batch_size: number of samples B; coords[:, 0] lies in [0, B).
    """

    feats: torch.Tensor
    coords: torch.Tensor
    spatial_shape: Tuple[int, int, int]
    batch_size: int


def grid_shape(pc_range, voxel_size) -> Tuple[int, int, int]:
    """Voxel grid (D, H, W) covering ``pc_range`` [x0, y0, z0, x1, y1, z1] with ``voxel_size`` (vx, vy, vz).

    Rounded to the nearest integer because ranges are chosen as multiples of the voxel size and float
    division (e.g. 76.8 / 0.32) lands a hair below the integer.
    """
    return tuple(int(round((pc_range[i + 3] - pc_range[i]) / voxel_size[i])) for i in (2, 1, 0))
