"""OpenPCDet's dynamic pillar VFE with a per-voxel z centre (``DynPillarVFE3D``, used by DSVT-P on Waymo)."""
from collections.abc import Mapping
from typing import Dict, Sequence

import torch
from torch import nn

from pc3d.registry import MODELS

from ..structures import SparseVoxels


class PFNLayer(nn.Module):
    """Linear (no bias) -> BatchNorm1d -> ReLU over points, then the max over each voxel's points.

    An inner layer outputs ``out_channels // 2`` per point and returns ``[point feature, its voxel's max]``
    (``out_channels`` per point); the last layer returns the voxel max ``(V, out_channels)``.
    """

    def __init__(self, in_channels: int, out_channels: int, last: bool, eps: float = 1e-3, momentum: float = 0.01):
        super().__init__()
        self.last = bool(last)
        width = out_channels if self.last else out_channels // 2
        self.linear = nn.Linear(in_channels, width, bias=False)
        self.norm = nn.BatchNorm1d(width, eps=eps, momentum=momentum)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, point2voxel: torch.Tensor) -> torch.Tensor:
        """x (N, C_in) points sorted by voxel, lengths (V,) points per voxel, point2voxel (N,) -> (N, C_out) or
        (V, C_out) for the last layer."""
        x = torch.relu(self.norm(self.linear(x)))
        voxel_max = torch.segment_reduce(x, "max", lengths=lengths)
        if self.last:
            return voxel_max
        return torch.cat([x, voxel_max[point2voxel]], dim=1)


@MODELS.register_module()
class DynPillarVFE3D(nn.Module):
    """Point features -> one feature per non-empty voxel, OpenPCDet's ``DynamicPillarVFE_3d``.

    Each point's input is ``[raw features (C), xyz - mean xyz of its voxel (3), xyz - its voxel's centre (3)]``
    (11 for Waymo's x, y, z, intensity, elongation). The voxel centre is ``index * size + size / 2 + range_min`` per
    axis, z included (DSVT-P's pillars are one 6 m voxel high, so the z centre is the pillar's middle). Then
    :class:`PFNLayer` s: e.g. ``num_filters=(192, 192)`` is Linear(11, 96) with ``[x, voxel max]`` concatenated
    (192) and Linear(192, 192) reduced by the voxel max.

    Output rows are sorted by ``(b, x, y, z)`` voxel index, the order of OpenPCDet's ``torch.unique`` over its merged
    key, so the voxel features equal the official ones row for row.

    Args:
        in_channels: C, raw point features after the batch column (x, y, z, intensity, elongation -> 5).
        num_filters: widths of the PFN layers (the last is the output width).
        voxel_size: (vx, vy, vz) metres; pc_range: [x0, y0, z0, x1, y1, z1] metres (the voxelizer's grid).
        use_absolute_xyz: keep the absolute x, y, z among the point features (OpenPCDet ``USE_ABSLOTE_XYZ``);
            False drops them (the first 3 raw columns).
        with_distance: append the point's distance to the origin (OpenPCDet ``WITH_DISTANCE``).
        bn_eps, bn_momentum: BatchNorm1d settings (OpenPCDet: 1e-3, 0.01).

    forward(dict from :class:`~pc3d.models.DynamicVoxelizer`: ``points (N, C)`` float32 in-range points,
    ``point2voxel (N,)`` int64, ``coords (V, 4)`` int32 (b, z, y, x)) -> :class:`SparseVoxels` with
    feats (V, num_filters[-1]).
    """

    def __init__(self, in_channels: int, num_filters: Sequence[int], voxel_size: Sequence[float],
                 pc_range: Sequence[float], use_absolute_xyz: bool = True, with_distance: bool = False,
                 bn_eps: float = 1e-3, bn_momentum: float = 0.01):
        super().__init__()
        if not num_filters:
            raise ValueError("DynPillarVFE3D: num_filters needs at least one width")
        self.voxel_size = [float(v) for v in voxel_size]
        self.pc_range = [float(v) for v in pc_range]
        self.use_absolute_xyz, self.with_distance = bool(use_absolute_xyz), bool(with_distance)
        self.in_channels = int(in_channels)
        widths = [self.in_channels + (6 if self.use_absolute_xyz else 3) + int(self.with_distance)]
        widths += [int(c) for c in num_filters]
        self.pfn_layers = nn.ModuleList(
            PFNLayer(widths[i], widths[i + 1], last=i == len(widths) - 2, eps=bn_eps, momentum=bn_momentum)
            for i in range(len(widths) - 1))
        self.out_channels = widths[-1]

    def forward(self, voxels: Dict) -> SparseVoxels:
        points, p2v, coords = voxels["points"], voxels["point2voxel"], voxels["coords"]
        if points.dim() != 2 or points.shape[1] != self.in_channels:
            raise ValueError(f"DynPillarVFE3D expects points (N, {self.in_channels}) [x, y, z, ...], "
                             f"got {tuple(points.shape)}")
        depth, height, width = voxels["spatial_shape"]
        if coords.shape[0] == 0:  # no point in range: no voxel (segment reductions refuse empty input)
            return SparseVoxels(points.new_zeros(0, self.out_channels), coords, (depth, height, width),
                                int(voxels["batch_size"]))
        # Voxels in OpenPCDet's order: ascending b, then x, then y, then z index.
        c = coords.long()
        key = ((c[:, 0] * width + c[:, 3]) * height + c[:, 2]) * depth + c[:, 1]
        voxel_order = torch.argsort(key)
        rank = torch.empty_like(voxel_order)
        rank[voxel_order] = torch.arange(voxel_order.numel(), device=coords.device)
        coords, p2v = coords[voxel_order], rank[p2v]
        # Points grouped by voxel (stable: each voxel keeps its points' input order) for segment reductions.
        point_order = torch.argsort(p2v, stable=True)
        points, p2v = points[point_order], p2v[point_order]
        lengths = torch.bincount(p2v, minlength=coords.shape[0])
        xyz = points[:, :3]
        cluster = xyz - torch.segment_reduce(xyz, "mean", lengths=lengths)[p2v]
        # Voxel centre per axis as OpenPCDet forms it in float32: index * size + (size / 2 + range_min).
        index = coords[p2v][:, [3, 2, 1]].to(xyz.dtype)
        centre = torch.stack([index[:, d] * self.voxel_size[d] + (self.voxel_size[d] / 2 + self.pc_range[d])
                              for d in range(3)], dim=1)
        parts = [points if self.use_absolute_xyz else points[:, 3:], cluster, xyz - centre]
        if self.with_distance:
            parts.append(torch.linalg.norm(xyz, dim=1, keepdim=True))
        x = torch.cat(parts, dim=1)
        for layer in self.pfn_layers:
            x = layer(x, lengths, p2v)
        return SparseVoxels(x, coords, (depth, height, width), int(voxels["batch_size"]))

    def convert_official_state(self, official: Mapping, source: str) -> Dict[str, torch.Tensor]:
        """OpenPCDet ``vfe.*`` (``pfn_layers.{i}.linear.weight``, ``pfn_layers.{i}.norm.*``) -> this module's state
        (the same names: this module keeps OpenPCDet's layout)."""
        return {key: official[key] for key in self.state_dict()}
