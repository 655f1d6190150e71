"""Attention-style pooling of sparse voxels onto a coarser grid (DSVT's 3D pooling between stages,
ScatterFormer's pillar pooling to BEV).

Children of one parent cell (stride ``(sz, sy, sx)``) are laid out in a dense ``(P, sz*sy*sx, C)`` block
with a key-padding mask for absent children; the query is their element-wise max and one multi-head
attention over the present children (plus a learned per-child-slot embedding) refines it:
``out = LN(max + Attn(max, children + slot_pos))``. With ``norm=False`` the LayerNorm is left out and
the attention's output projection starts at zero, so the untrained pooling is a plain max-pool.
"""
from typing import Sequence

import torch
from torch import nn

from pc3d.registry import MODELS

from ..structures import SparseVoxels


def pool_coords(coords: torch.Tensor, spatial_shape, stride: Sequence[int]):
    """Parent cells of voxels.

    Args:
        coords: (V, 4) int32 (b, z, y, x).
        spatial_shape: (D, H, W) of the child grid.
        stride: (sz, sy, sx).

    Returns:
        parent_coords (P, 4) int32 (b, z, y, x) on the pooled grid, sorted by (b, z, y, x);
        parent (V,) int64 parent row of each voxel; child (V,) int64 slot in [0, sz*sy*sx);
        pooled_shape (D', H', W') = ceil(shape / stride).
    """
    sz, sy, sx = stride
    d, h, w = spatial_shape
    pd, ph, pw = -(-d // sz), -(-h // sy), -(-w // sx)
    c = coords.long()
    key = ((c[:, 0] * pd + c[:, 1] // sz) * ph + c[:, 2] // sy) * pw + c[:, 3] // sx
    uniq, parent = torch.unique(key, return_inverse=True)
    child = ((c[:, 1] % sz) * sy + c[:, 2] % sy) * sx + c[:, 3] % sx
    px = uniq % pw
    py = (uniq // pw) % ph
    pz = (uniq // (pw * ph)) % pd
    pb = uniq // (pw * ph * pd)
    parent_coords = torch.stack([pb, pz, py, px], dim=1).int()
    return parent_coords, parent, child, (pd, ph, pw)


@MODELS.register_module()
class AttentionPooling(nn.Module):
    """SparseVoxels (V, C) on (D, H, W) -> SparseVoxels (P, out_channels) on ceil((D, H, W) / stride).

    Args:
        channels: C.
        stride: (sz, sy, sx) pooling factor; (D, 1, 1) pools each pillar's voxels into one BEV cell.
        num_heads: attention heads.
        out_channels: width after pooling (a Linear when it differs from C).
        norm: LayerNorm the pooled features (the papers); False keeps their scale and starts as a max-pool.
    """

    def __init__(self, channels: int, stride: Sequence[int], num_heads: int = 8, out_channels: int = None,
                 norm: bool = True):
        super().__init__()
        self.stride = tuple(int(s) for s in stride)
        slots = self.stride[0] * self.stride[1] * self.stride[2]
        self.slot_pos = nn.Parameter(torch.zeros(slots, channels))
        nn.init.normal_(self.slot_pos, std=0.02)
        self.attn = nn.MultiheadAttention(channels, num_heads, batch_first=True)
        self.norm = nn.LayerNorm(channels) if norm else nn.Identity()
        out_channels = out_channels or channels
        self.out_proj = nn.Linear(channels, out_channels) if out_channels != channels else nn.Identity()
        self.out_channels = out_channels
        self.starts_as_max = not norm
        self.reset_branch()

    def reset_branch(self) -> None:
        """Without the norm, zero the attention's output projection so the pooling starts as a max-pool
        (called again by backbones that re-initialise their weights after building this module)."""
        if self.starts_as_max:
            nn.init.zeros_(self.attn.out_proj.weight)
            nn.init.zeros_(self.attn.out_proj.bias)

    def forward(self, voxels: SparseVoxels) -> SparseVoxels:
        feats = voxels.feats
        parent_coords, parent, child, shape = pool_coords(voxels.coords, voxels.spatial_shape, self.stride)
        p, k, c = parent_coords.shape[0], self.slot_pos.shape[0], feats.shape[1]
        if p == 0:  # no voxels: nothing to attend over
            return SparseVoxels(self.out_proj(feats), parent_coords, shape, voxels.batch_size)
        flat = parent * k + child
        # Each (parent, child slot) holds at most one voxel: a voxel's cell is unique in the child grid.
        dense = feats.new_zeros(p * k, c).index_copy(0, flat, feats).view(p, k, c)
        present = torch.zeros(p * k, dtype=torch.bool, device=feats.device).index_fill(0, flat, True).view(p, k)
        query = dense.masked_fill(~present[:, :, None], float("-inf")).amax(dim=1, keepdim=True)
        out, _ = self.attn(query, dense + self.slot_pos, dense, key_padding_mask=~present, need_weights=False)
        pooled = self.out_proj(self.norm((query + out)[:, 0]))
        return SparseVoxels(pooled, parent_coords, shape, voxels.batch_size)
