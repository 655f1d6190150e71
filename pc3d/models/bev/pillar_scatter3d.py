"""OpenPCDet's ``PointPillarScatter3d``: sparse voxels -> dense BEV map, height folded into channels."""
import torch
from torch import nn

from pc3d.registry import MODELS

from ..structures import SparseVoxels


@MODELS.register_module()
class PointPillarScatter3d(nn.Module):
    """SparseVoxels feats (V, C) on grid (nz, ny, nx) -> (B, C * nz, ny, nx) float32, zeros where no voxel.

    Channel ``c * nz + z`` holds feature c of z-slice z (OpenPCDet's layout; :class:`BEVScatter` uses
    ``z * C + c``). For pillars (nz = 1) both are the plain PointPillars scatter. A cell written by several rows
    keeps the last one (voxel coordinates are unique, so this does not arise for encoder outputs).

    Args:
        input_shape: (nx, ny, nz) grid size in voxels, OpenPCDet's ``INPUT_SHAPE`` order.
        num_bev_features: C * nz, the output channels (OpenPCDet's ``NUM_BEV_FEATURES``).
    """

    def __init__(self, input_shape, num_bev_features: int):
        super().__init__()
        self.nx, self.ny, self.nz = (int(v) for v in input_shape)
        if num_bev_features % self.nz:
            raise ValueError(f"PointPillarScatter3d: num_bev_features {num_bev_features} is not a multiple of "
                             f"the {self.nz} z-slices of input_shape {tuple(input_shape)}")
        self.out_channels = int(num_bev_features)
        self.in_channels = self.out_channels // self.nz

    def forward(self, voxels: SparseVoxels) -> torch.Tensor:
        feats, coords = voxels.feats, voxels.coords.long()
        if tuple(voxels.spatial_shape) != (self.nz, self.ny, self.nx) or feats.shape[1] != self.in_channels:
            raise ValueError(f"PointPillarScatter3d expects {self.in_channels}-channel voxels on grid (nz, ny, nx) = "
                             f"{(self.nz, self.ny, self.nx)}, got {feats.shape[1]} channels on "
                             f"{tuple(voxels.spatial_shape)}")
        b = voxels.batch_size
        canvas = feats.new_zeros(b, self.in_channels, self.nz * self.ny * self.nx)
        cell = (coords[:, 1] * self.ny + coords[:, 2]) * self.nx + coords[:, 3]
        canvas[coords[:, 0], :, cell] = feats
        return canvas.view(b, self.in_channels * self.nz, self.ny, self.nx)
