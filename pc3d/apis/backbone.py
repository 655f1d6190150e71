"""A detector's front half as one standalone module: points (or voxels) in, sparse voxel features and a
BEV feature map out. For embedding pc3d's 3D backbones into another model or a driving stack."""
from typing import List, NamedTuple, Optional, Sequence, Union

import torch
from torch import nn

from pc3d.models.structures import SparseVoxels
from pc3d.registry import MODELS

from ._config import load_config

_STAGES = ("voxelizer", "voxel_encoder", "backbone3d", "bev")


class BackboneOutput(NamedTuple):
    """voxels: the 3D backbone's :class:`SparseVoxels` (feats (V, C) float32, coords (V, 4) int32
    (b, z, y, x), spatial_shape (D, H, W), batch_size B); bev: (B, D * C, H, W) float32 map (None when
    the config has no ``bev`` stage)."""

    voxels: SparseVoxels
    bev: Optional[torch.Tensor]


class PointCloudBackbone(nn.Module):
    """voxelizer -> voxel encoder -> 3D backbone (optional) -> BEV scatter (optional).

    forward(points) with ``points`` one cloud ``(N, C)`` float32 [x, y, z, features...] (C = the encoder's
    ``in_channels``), or a list of such clouds (a batch); or forward(voxels=SparseVoxels) to start after
    the voxel encoder. Returns :class:`BackboneOutput`.
    """

    def __init__(self, voxelizer: nn.Module, voxel_encoder: nn.Module, backbone3d: Optional[nn.Module] = None,
                 bev: Optional[nn.Module] = None):
        super().__init__()
        self.voxelizer, self.voxel_encoder, self.backbone3d, self.bev = voxelizer, voxel_encoder, backbone3d, bev

    @staticmethod
    def batch_points(points: Union[torch.Tensor, Sequence[torch.Tensor]]):
        """(N, C) or a list of (N_i, C) -> ((sum N, 1 + C) float32 with the sample index in column 0, B)."""
        clouds = [points] if isinstance(points, torch.Tensor) else list(points)
        if not clouds:
            raise ValueError("points must be a (N, C) tensor or a non-empty list of them")
        for i, p in enumerate(clouds):
            if not isinstance(p, torch.Tensor) or p.dim() != 2 or p.shape[1] < 3:
                raise ValueError(f"points[{i}] must be a (N, C >= 3) tensor [x, y, z, ...], got "
                                 f"{tuple(getattr(p, 'shape', ())) or type(p).__name__}")
            if p.shape[1] != clouds[0].shape[1]:
                raise ValueError(f"all clouds need the same columns: points[0] has {clouds[0].shape[1]}, "
                                 f"points[{i}] has {p.shape[1]}")
        rows = [torch.cat([p.new_full((p.shape[0], 1), float(i)), p], dim=1) for i, p in enumerate(clouds)]
        return torch.cat(rows).float(), len(clouds)

    def forward(self, points: Union[torch.Tensor, List[torch.Tensor], None] = None,
                voxels: Optional[SparseVoxels] = None) -> BackboneOutput:
        if (points is None) == (voxels is None):
            raise ValueError("pass exactly one of points or voxels")
        if voxels is None:
            batched, batch_size = self.batch_points(points)
            voxels = self.voxel_encoder(self.voxelizer(batched, batch_size))
        if self.backbone3d is not None:
            voxels = self.backbone3d(voxels)
        return BackboneOutput(voxels, self.bev(voxels) if self.bev is not None else None)


def build_backbone(cfg) -> PointCloudBackbone:
    """Builds the front half of a detector.

    Args:
        cfg: a detector config (path, dict or mmengine Config) whose ``model`` has ``voxelizer``,
            ``voxel_encoder`` and optionally ``backbone3d`` and ``bev``; or a dict with those keys directly.

    Returns:
        :class:`PointCloudBackbone` (randomly initialised; load weights with ``load_state_dict``, whose keys
        match a detector's ``voxelizer.* / voxel_encoder.* / backbone3d.* / bev.*``).
    """
    cfg = load_config(cfg)
    model_cfg = cfg.get("model", cfg)
    missing = [k for k in ("voxelizer", "voxel_encoder") if k not in model_cfg]
    if missing:
        raise ValueError(f"backbone config lacks {missing}; it needs voxelizer and voxel_encoder "
                         "(and optionally backbone3d, bev)")
    parts = {k: MODELS.build(model_cfg[k]) if model_cfg.get(k) else None for k in _STAGES}
    return PointCloudBackbone(**parts)
