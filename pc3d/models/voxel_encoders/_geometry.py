"""Voxel-centre geometry shared by the voxel encoders."""
from typing import Sequence

import torch


def voxel_centres(coords: torch.Tensor, voxel_size: Sequence[float], pc_range: Sequence[float]) -> torch.Tensor:
    """Centres of voxels.

    Args:
        coords: (V, 4) int32 voxel indices (b, z, y, x).
        voxel_size: (vx, vy, vz) metres; pc_range: [x0, y0, z0, x1, y1, z1] metres.

    Returns:
        (V, 3) float32 [x, y, z] metres.
    """
    xyz_index = coords[:, [3, 2, 1]].float()
    size = torch.tensor(voxel_size, dtype=torch.float32, device=coords.device)
    origin = torch.tensor(pc_range[:3], dtype=torch.float32, device=coords.device)
    return (xyz_index + 0.5) * size + origin
