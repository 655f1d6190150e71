"""``torch.export`` of the FlatFormer inference path (voxel features + coords -> voxel features).

The partition op (``pc3d::flat_window_partition``) has a fake kernel with a data-dependent group count,
so the exported program keeps the number of voxels symbolic and runs on any scan's voxels.
"""
from typing import Sequence

import torch
from torch import nn

from .flatformer import FlatFormer


class FlatFormerInference(nn.Module):
    """forward(feats (V, C_in) float32, coords (V, 4) int32 (b, z, y, x)) -> (V, C) float32 on a fixed grid."""

    def __init__(self, backbone: FlatFormer, spatial_shape: Sequence[int]):
        super().__init__()
        self.backbone = backbone
        self.spatial_shape = tuple(int(s) for s in spatial_shape)

    def forward(self, feats: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_features(feats, coords, self.spatial_shape)


def export_flatformer(backbone: FlatFormer, spatial_shape: Sequence[int], feats: torch.Tensor,
                      coords: torch.Tensor, max_voxels: int = 2 ** 21) -> torch.export.ExportedProgram:
    """Exports ``backbone`` (in eval mode) for grid ``spatial_shape`` (D, H, W) with the voxel count dynamic.

    Args:
        backbone: a :class:`FlatFormer`.
        spatial_shape: (D, H, W) of the voxel grid the program will be fed.
        feats: (V, C_in) float32 example voxel features, V >= 2.
        coords: (V, 4) int32 example coords (b, z, y, x).
        max_voxels: upper bound of the symbolic voxel count.

    Returns:
        ``torch.export.ExportedProgram``; call ``program.module()(feats, coords)``.
    """
    if feats.shape[0] < 2:
        raise ValueError(f"the example needs at least 2 voxels, got {feats.shape[0]}")
    num_voxels = torch.export.Dim("num_voxels", min=2, max=max_voxels)
    module = FlatFormerInference(backbone, spatial_shape).eval()
    return torch.export.export(module, (feats, coords), dynamic_shapes=({0: num_voxels}, {0: num_voxels}))
