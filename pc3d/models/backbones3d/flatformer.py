"""FlatFormer (Liu et al., CVPR 2023): attention in equal-size groups of flattened windows.

Voxels are sorted along a snake curve over windows (and a snake inside each window), then cut into
groups of exactly G voxels (``pc3d.ops.flat_window_partition``), so every group costs the same and no
window padding is needed. Each block runs four post-norm attention layers on the x-major, x-major
shifted, y-major and y-major shifted orders. A sinusoidal encoding of the voxel's (x, y) is added to
queries and keys (the paper's pillars have no z; on a 3D grid ``position_axes=('x', 'y', 'z')`` also
encodes the slice, without which the voxels of one column look alike to the attention but for their
features).

``cpe_kernel=(kz, ky, kx)`` puts a conditional position encoding in front of every block (as Point
Transformer V3's xCPE, depthwise here): ``x += Linear(DepthwiseSubmConv(LN(x)))``, so each voxel's features
say what occupies the cells around it before it attends; the linear starts at zero under ``identity_init``.
Not in the paper. One per block rather than per layer: the gather-based depthwise convolution costs about
0.17 s forward + backward per 20k voxels (a 2-frame batch of configs/compare) on one idle CPU core, so one
before every layer would add about a fifth to a training iteration there.

``identity_init=True`` swaps the post-norm layers for pre-norm residual ones whose branches start at zero,
so the untrained backbone passes the encoder's features through unchanged (their scale, which says how
much a voxel holds, included) instead of re-normalising them four times per block; the detector then
starts where the no-3D-stage control does and the attention learns what to add. Not in the paper: it is
for small-data training (configs/compare/README.md).
"""
from typing import Optional, Sequence

import torch
from torch import nn

from pc3d.registry import MODELS

from ..structures import SparseVoxels
from .attention import attention_layer, init_transformer_weights, sinusoidal_position, zero_init_branches
from .sparse_depthwise import DepthwiseSubmConv, neighbor_table

# The four partitions of a block, in order: (axis, shift).
PARTITIONS = (("x", False), ("x", True), ("y", False), ("y", True))
# Column of each position axis in the (b, z, y, x) voxel coordinates.
COORD_COLUMN = {"x": 3, "y": 2, "z": 1}


@MODELS.register_module()
class FlatFormer(nn.Module):
    """Sparse voxels in, same voxels with transformed features out.

    Args:
        in_channels: width of the incoming voxel features (projected to ``channels`` when different).
        channels: C, model width.
        num_heads: attention heads.
        num_blocks: blocks of four layers (x, x-shift, y, y-shift).
        window_shape: (wy, wx) window size in voxels (the partition ignores z).
        group_size: G, voxels per attention group.
        ffn_channels: hidden width of each layer's GELU FFN.
        identity_init: pre-norm layers that start as the identity (see the module docstring) instead of
            the paper's post-norm layers.
        position_axes: voxel axes of the sinusoidal position encoding, from 'x', 'y', 'z'.
        cpe_kernel: (kz, ky, kx) odd kernel of a depthwise-conv position encoding before every block (see
            the module docstring); None: none, as in the paper.

    forward(SparseVoxels feats (V, in_channels) float32, coords (V, 4) int32 (b, z, y, x)) ->
    SparseVoxels feats (V, channels) on the same coords, spatial shape and batch.
    """

    def __init__(self, in_channels: int, channels: int = 128, num_heads: int = 8, num_blocks: int = 2,
                 window_shape: Sequence[int] = (13, 13), group_size: int = 144, ffn_channels: int = 256,
                 identity_init: bool = False, position_axes: Sequence[str] = ("x", "y"),
                 cpe_kernel: Optional[Sequence[int]] = None):
        super().__init__()
        unknown = [a for a in position_axes if a not in COORD_COLUMN]
        if unknown or not position_axes:
            raise ValueError(f"position_axes must be a non-empty subset of {tuple(COORD_COLUMN)}, "
                             f"got {tuple(position_axes)}")
        if cpe_kernel is not None and len(cpe_kernel) != 3:
            raise ValueError(f"cpe_kernel must be (kz, ky, kx), got {tuple(cpe_kernel)}")
        self.position_columns = [COORD_COLUMN[a] for a in position_axes]
        self.window_shape = tuple(int(w) for w in window_shape)
        self.group_size = int(group_size)
        self.channels = self.out_channels = channels
        self.input_proj = nn.Linear(in_channels, channels) if in_channels != channels else nn.Identity()
        self.layers = nn.ModuleList(attention_layer(channels, num_heads, ffn_channels, identity_init)
                                    for _ in range(num_blocks * len(PARTITIONS)))
        self.cpes = nn.ModuleList(ConvPositionEncoding(channels, cpe_kernel) for _ in range(num_blocks)) \
            if cpe_kernel is not None else None
        init_transformer_weights(self)
        if identity_init:
            zero_init_branches([m for layer in self.layers for m in layer.branch_outputs()])
            if self.cpes is not None:
                zero_init_branches([cpe.proj for cpe in self.cpes])

    def partitions(self, coords: torch.Tensor, spatial_shape):
        """The four (indices (Ng, G), inverse (V,), padding_mask (Ng, G)) of a block; shared by all blocks
        because the voxel set does not change."""
        from pc3d.ops import flat_window_partition

        out = []
        for axis, shift in PARTITIONS:
            p = flat_window_partition(coords, spatial_shape, self.window_shape, self.group_size, axis=axis, shift=shift)
            out.append((p.indices, p.inverse, p.padding_mask))
        return out

    def forward_features(self, feats: torch.Tensor, coords: torch.Tensor, spatial_shape) -> torch.Tensor:
        """feats (V, in_channels) float32, coords (V, 4) int32 (b, z, y, x) -> (V, channels)."""
        x = self.input_proj(feats)
        if coords.shape[0] == 0:
            return x
        parts = self.partitions(coords, spatial_shape)
        pos = sinusoidal_position(coords[:, self.position_columns].float(), self.channels)
        table = neighbor_table(coords, spatial_shape, self.cpes[0].conv.offsets) if self.cpes is not None else None
        for i, layer in enumerate(self.layers):
            block, part = divmod(i, len(PARTITIONS))
            if table is not None and part == 0:
                x = self.cpes[block](x, table)
            indices, inverse, padding_mask = parts[part]
            x = layer(x, pos, indices, inverse, padding_mask)
        return x

    def forward(self, voxels: SparseVoxels) -> SparseVoxels:
        feats = self.forward_features(voxels.feats, voxels.coords, voxels.spatial_shape)
        return SparseVoxels(feats, voxels.coords, tuple(voxels.spatial_shape), voxels.batch_size)


class ConvPositionEncoding(nn.Module):
    """``x + Linear(DepthwiseSubmConv(LN(x)))`` on a voxel list: (V, C) -> (V, C).

    forward(feats (V, C), table (V, K) from ``neighbor_table`` with ``self.conv.offsets``).
    """

    def __init__(self, channels: int, kernel_size: Sequence[int]):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.conv = DepthwiseSubmConv(channels, kernel_size)
        self.proj = nn.Linear(channels, channels)

    def forward(self, feats: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        return feats + self.proj(self.conv(self.norm(feats), table))
