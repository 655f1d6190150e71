"""SECOND / CenterPoint-Voxel sparse-conv 3D backbone on spconv.

Stages of submanifold convs (which keep the active set) separated by strided sparse convs (which
downsample and dilate it), then a final conv that squeezes the height so the to-BEV stage folds few
z-slices into channels.
"""
from typing import Sequence

from torch import nn

from pc3d.registry import MODELS

from ..structures import SparseVoxels
from ._spconv_compat import import_spconv


def _norm_act(channels: int):
    return [nn.BatchNorm1d(channels, eps=1e-3), nn.ReLU(inplace=True)]


@MODELS.register_module()
class SparseConvBackbone(nn.Module):
    """Sparse 3D conv encoder.

    Args:
        in_channels: voxel feature width from the encoder.
        stage_channels: output width of each stage, e.g. (16, 32, 64, 64).
        stage_blocks: SubMConv3d layers per stage, e.g. (1, 2, 2, 2).
        stage_strides: stride (z, y, x) of the sparse conv that opens each stage after the first,
            e.g. ((2, 2, 2), (2, 2, 2), (2, 1, 1)): a stage with stride (2, 1, 1) only pools height.
        out_channels: width after the final height-squeezing conv (kernel (3, 1, 1), stride (2, 1, 1)).

    forward(SparseVoxels (V, in_channels), spatial shape (D, H, W)) -> SparseVoxels on the strided
    grid ``(D', H / sy, W / sx)`` with coords (b, z, y, x) int32.
    """

    def __init__(self, in_channels: int, stage_channels: Sequence[int] = (16, 32, 64, 64),
                 stage_blocks: Sequence[int] = (1, 2, 2, 2),
                 stage_strides: Sequence[Sequence[int]] = ((2, 2, 2), (2, 2, 2), (2, 1, 1)),
                 out_channels: int = 64):
        super().__init__()
        if not (len(stage_channels) == len(stage_blocks) == len(stage_strides) + 1):
            raise ValueError("stage_channels and stage_blocks need one entry per stage and stage_strides one "
                             f"fewer, got {len(stage_channels)}, {len(stage_blocks)}, {len(stage_strides)}")
        spconv = import_spconv()
        self._spconv = spconv
        stages, c_prev = [], in_channels
        for i, (c, n) in enumerate(zip(stage_channels, stage_blocks)):
            layers = []
            if i > 0:
                layers += [spconv.SparseConv3d(c_prev, c, 3, stride=tuple(stage_strides[i - 1]), padding=1,
                                               bias=False, indice_key=f"down{i}"), *_norm_act(c)]
                c_prev = c
            for j in range(n):
                # Submanifold convs of one stage share their rulebook (same indice_key).
                layers += [spconv.SubMConv3d(c_prev, c, 3, padding=1, bias=False, indice_key=f"subm{i}"),
                           *_norm_act(c)]
                c_prev = c
            stages.append(spconv.SparseSequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.conv_out = spconv.SparseSequential(
            spconv.SparseConv3d(c_prev, out_channels, (3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0), bias=False,
                                indice_key="out"), *_norm_act(out_channels))
        self.out_channels = out_channels

    def forward(self, voxels: SparseVoxels) -> SparseVoxels:
        x = self._spconv.SparseConvTensor(voxels.feats, voxels.coords.int(), list(voxels.spatial_shape),
                                          voxels.batch_size)
        for stage in self.stages:
            x = stage(x)
        x = self.conv_out(x)
        return SparseVoxels(x.features, x.indices, tuple(int(s) for s in x.spatial_shape), voxels.batch_size)
