"""PointPillars pillar feature net: a shared Linear-BN-ReLU over each pillar's points, then max-pool."""
from typing import Dict, Sequence

import torch
from torch import nn

from pc3d.registry import MODELS

from ..structures import SparseVoxels
from ._geometry import voxel_centres


@MODELS.register_module()
class PillarEncoder(nn.Module):
    """Encodes hard-voxelized pillars ``(V, P, C)`` into ``(V, out_channels)``.

    A point's input is its raw features (C), its offset to the mean of its pillar's points (3) and its
    offset to the pillar centre (3: x, y and z, the z centre being the middle of ``pc_range``'s height);
    padded slots skip the layer and stay zero, so the max-pool only sees real points.

    Args:
        in_channels: C, raw point features (x, y, z, intensity, elongation -> 5).
        out_channels: width of the pillar feature.
        voxel_size, pc_range: the voxelizer's grid (metres).
    """

    def __init__(self, in_channels: int, out_channels: int, voxel_size: Sequence[float], pc_range: Sequence[float]):
        super().__init__()
        self.voxel_size, self.pc_range = list(voxel_size), list(pc_range)
        self.linear = nn.Linear(in_channels + 6, out_channels, bias=False)
        self.norm = nn.BatchNorm1d(out_channels, eps=1e-3)
        self.out_channels = out_channels

    def forward(self, voxels: Dict) -> SparseVoxels:
        """``voxels`` from :class:`HardVoxelizer`: ``voxels (V, P, C)``, ``coords (V, 4)`` int32,
        ``num_points (V,)`` int32. Returns :class:`SparseVoxels` with feats (V, out_channels)."""
        pts, coords, num = voxels["voxels"], voxels["coords"], voxels["num_points"]
        num_v, max_p = pts.shape[0], pts.shape[1]
        mask = (torch.arange(max_p, device=pts.device)[None, :] < num[:, None]).unsqueeze(-1)  # (V, P, 1)
        xyz = pts[..., :3]
        mean = (xyz * mask).sum(1, keepdim=True) / num.clamp(min=1).view(-1, 1, 1).to(pts.dtype)
        centre = voxel_centres(coords, self.voxel_size, self.pc_range).unsqueeze(1)
        x = torch.cat([pts, xyz - mean, xyz - centre], dim=-1)
        # Only real points go through Linear-BN (padding would skew the batch statistics).
        real = mask.view(-1)
        h = torch.relu(self.norm(self.linear(x.reshape(num_v * max_p, x.shape[-1])[real])))
        dense = h.new_zeros(num_v * max_p, self.out_channels)
        dense[real] = h
        # Post-ReLU features are >= 0, so the zeros in padded slots never win the max.
        feats = dense.view(num_v, max_p, self.out_channels).amax(dim=1) if num_v and max_p else h.new_zeros(num_v, self.out_channels)
        return SparseVoxels(feats, coords, tuple(voxels["spatial_shape"]), int(voxels["batch_size"]))
