"""Scatter sparse voxel features into a dense BEV map, folding the remaining height into channels.

For pillars (D = 1) this is PointPillars' scatter; for a 3D backbone's output (D > 1 z-slices) it is
SECOND's height compression: channel ``d * C + c`` of the map holds feature c of z-slice d.
"""
import torch
from torch import nn

from pc3d.registry import MODELS

from ..structures import SparseVoxels


@MODELS.register_module()
class BEVScatter(nn.Module):
    """SparseVoxels (V, C) on grid (D, H, W) -> (B, D * C, H, W) float32 (channels_last), zeros where no voxel.

    Args:
        in_channels: C of the incoming voxel features.
        num_slices: D, the z extent of the incoming grid (1 for pillars); checked at run time so a
            config whose ``out_channels = num_slices * in_channels`` disagrees with the grid fails loudly.
    """

    def __init__(self, in_channels: int, num_slices: int = 1):
        super().__init__()
        self.in_channels, self.num_slices = in_channels, num_slices
        self.out_channels = in_channels * num_slices

    def forward(self, voxels: SparseVoxels) -> torch.Tensor:
        d, h, w = voxels.spatial_shape
        feats, coords = voxels.feats, voxels.coords.long()
        if d != self.num_slices or feats.shape[1] != self.in_channels:
            raise ValueError(f"BEVScatter expects {self.num_slices} z-slices of {self.in_channels} channels, got grid "
                             f"{voxels.spatial_shape} with {feats.shape[1]} channels")
        b = voxels.batch_size
        # Rows of the (B * H * W, D * C) canvas; each voxel writes its C features at column block z.
        canvas = feats.new_zeros(b * h * w, d, feats.shape[1])
        cell = (coords[:, 0] * h + coords[:, 2]) * w + coords[:, 3]
        canvas[cell, coords[:, 1]] = feats
        # The permuted (B, H, W, C) canvas is a channels_last (B, C, H, W) tensor: kept that way on
        # purpose, since CPU convolutions run about 2x faster in channels_last (oneDNN) than in NCHW.
        return canvas.view(b, h, w, d * feats.shape[1]).permute(0, 3, 1, 2)
