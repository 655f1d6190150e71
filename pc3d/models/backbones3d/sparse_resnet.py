"""Sparse ResNet encoder on spconv (the MinkResNet family TR3D and FCAF3D use), returning every level.

Input: voxels of one grid (``SparseVoxels``, coords (b, z, y, x)). A stem conv (optionally strided, optionally
followed by a 2x max pool) then stages that each open with a stride-2 sparse conv (kernel 2, so each coarse
voxel covers exactly 2x2x2 voxels of the level below and the levels nest) followed by residual blocks of
two submanifold 3x3x3 convs. Level i of the output has stride ``strides[i]`` (per axis, in input voxels).
"""
from typing import List, Sequence

import torch
from torch import nn

from pc3d.registry import MODELS

from ..structures import SparseVoxels
from ._spconv_compat import import_spconv


def _bn(c: int) -> nn.Module:
    return nn.BatchNorm1d(c, eps=1e-3, momentum=0.01)


class SparseBasicBlock(nn.Module):
    """Residual block on a fixed voxel set: SubM3x3-BN-ReLU-SubM3x3-BN + identity, ReLU.

    forward(SparseConvTensor (V, channels)) -> SparseConvTensor (V, channels), same indices and order.
    """

    def __init__(self, channels: int, indice_key: str):
        super().__init__()
        spconv = import_spconv()
        self.conv1 = spconv.SubMConv3d(channels, channels, 3, padding=1, bias=False, indice_key=indice_key)
        self.bn1 = _bn(channels)
        self.conv2 = spconv.SubMConv3d(channels, channels, 3, padding=1, bias=False, indice_key=indice_key)
        self.bn2 = _bn(channels)

    def forward(self, x):
        out = self.conv1(x)
        out = out.replace_feature(torch.relu(self.bn1(out.features)))
        out = self.conv2(out)
        return out.replace_feature(torch.relu(self.bn2(out.features) + x.features))


@MODELS.register_module()
class SparseResNetEncoder(nn.Module):
    """Multi-level sparse ResNet encoder.

    Args:
        in_channels: voxel feature width (3 for RGB).
        stem_channels: width of the stem conv (kernel 3).
        stem_stride: 1 (submanifold stem on the input grid) or 2 (strided stem, kernel 2: MinkResNet's conv1
            on 1 cm voxels makes 2 cm).
        stem_pool: a 2x2x2 stride-2 sparse max pool after the stem (MinkResNet's ``pool=True``).
        stage_channels: width of each stage, e.g. (64, 128, 128, 128) (TR3D); every stage halves the grid.
        stage_blocks: residual blocks per stage, e.g. (3, 4, 6, 3) (ResNet-34).

    forward(SparseVoxels feats (V, in_channels), coords (V, 4) int32 (b, z, y, x)) -> list of
    ``spconv.SparseConvTensor``, one per stage: level i has ``stage_channels[i]`` features and stride
    ``self.strides[i]`` (z, y, x) in input voxels; ``self.out_channels`` lists the widths.
    """

    def __init__(self, in_channels: int = 3, stem_channels: int = 64, stem_stride: int = 2, stem_pool: bool = True,
                 stage_channels: Sequence[int] = (64, 128, 128, 128), stage_blocks: Sequence[int] = (3, 4, 6, 3)):
        super().__init__()
        if len(stage_channels) != len(stage_blocks) or not stage_channels:
            raise ValueError(f"stage_channels and stage_blocks need one entry per stage, got {stage_channels}, "
                             f"{stage_blocks}")
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride}")
        spconv = import_spconv()
        self._spconv = spconv
        if stem_stride == 1:
            stem = [spconv.SubMConv3d(in_channels, stem_channels, 3, padding=1, bias=False, indice_key="stem")]
        else:
            stem = [spconv.SparseConv3d(in_channels, stem_channels, 2, stride=2, bias=False, indice_key="stem")]
        stem += [_bn(stem_channels), nn.ReLU(inplace=True)]
        if stem_pool:
            stem.append(spconv.SparseMaxPool3d(2, stride=2, indice_key="pool"))
        self.stem = spconv.SparseSequential(*stem)
        s = stem_stride * (2 if stem_pool else 1)
        self.stages, self.strides, c_prev = nn.ModuleList(), [], stem_channels
        for i, (c, n) in enumerate(zip(stage_channels, stage_blocks)):
            down = spconv.SparseSequential(spconv.SparseConv3d(c_prev, c, 2, stride=2, bias=False,
                                                               indice_key=f"down{i}"), _bn(c), nn.ReLU(inplace=True))
            self.stages.append(nn.ModuleList([down] + [SparseBasicBlock(c, f"res{i}") for _ in range(n)]))
            s *= 2
            self.strides.append((s, s, s))
            c_prev = c
        self.out_channels = list(stage_channels)
        self.total_stride = s

    def forward(self, voxels: SparseVoxels) -> List:
        shape = [int(-(-d // self.total_stride) * self.total_stride) for d in voxels.spatial_shape]
        x = self._spconv.SparseConvTensor(voxels.feats, voxels.coords.int(), shape, voxels.batch_size)
        x = self.stem(x)
        outs = []
        for stage in self.stages:
            for layer in stage:  # the residual blocks take the whole sparse tensor, not its features
                x = layer(x)
            outs.append(x)
        return outs
