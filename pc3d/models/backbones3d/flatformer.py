"""FlatFormer (Liu et al., CVPR 2023): attention in equal-size groups of flattened windows.

Voxels are sorted along a snake curve over windows (and a snake inside each window), then cut into
groups of exactly G voxels (``pc3d.ops.flat_window_partition``), so every group costs the same and no
window padding is needed. Each block runs four post-norm attention layers on the x-major, x-major
shifted, y-major and y-major shifted orders. A sinusoidal encoding of the voxel's (x, y) is added to
queries and keys (the paper's pillars have no z; on a 3D grid ``position_axes=('x', 'y', 'z')`` also
encodes the slice, without which the voxels of one column look alike to the attention but for their
features).

``cpe_kernel=(kz, ky, kx)`` puts a conditional position encoding (``conv_position``, PTv3's xCPE) in front
of every block, of every layer with ``cpe_every_layer=True`` (PTv3 has one per attention layer), or of every
``cpe_interval`` layers (2: DSVT's blocks of two set-attention layers, each behind its own encoding; with the
stem and ``position_encoding='mlp'`` it steadies FlatFormer's seeds, sd 0.007 over five, at a lower mean:
configs/compare/README.md); its conv is depthwise (``cpe_depthwise=True``, the default) or full. Not in the
paper. Cost forward + backward per 19k voxels (a 2-frame batch of configs/compare) on one busy CPU core:
depthwise 0.24 s, full 0.41 s.
``cpe_batchnorm=True`` puts BatchNorm between that conv and its linear (``conv_position``); not in the paper,
off by default (measured in configs/compare/README.md: it does not steady FlatFormer's seeds).

``identity_init=True`` swaps the post-norm layers for pre-norm residual ones whose branches start at zero,
so the untrained backbone passes the encoder's features through unchanged (their scale, which says how
much a voxel holds, included) instead of re-normalising them four times per block; the detector then
starts where the no-3D-stage control does and the attention learns what to add. Not in the paper: it is
for small-data training (configs/compare/README.md).

``stem_kernel=(kz, ky, kx)`` replaces the linear input projection with a conv stem (``conv_position.ConvStem``:
full submanifold conv, BatchNorm, GELU; PTv3's embedding, the spconv baseline's first layer with GELU for
ReLU). Not in the paper.

``cosine_attention=True`` uses Swin V2's scaled cosine attention (``attention.GroupAttention``) in place of
the dot product, so the attention logits stay bounded by a learned per-head temperature. Not in the paper.

``position_encoding='mlp'`` replaces the sinusoidal encoding of absolute position by DSVT's learned one: an MLP
of the voxel's offset from the centre of its 13 x 13 window (``window_position``; the window spans the whole
height for z), one MLP for the unshifted and one for the shifted windows. Why: the sinusoid at C = 64 spends
most of its channels on wavelengths far longer than a window, so inside a group they are nearly constant;
DSVT-V, whose encoding this is, looked the steadiest transformer (first three seeds). Not in the paper; measured in
configs/compare/README.md (seeds 0 and 2: 0.570 and 0.468 Vehicle AP against the sinusoid's 0.555 and 0.501), off by
default.
"""
from typing import Optional, Sequence

import torch
from torch import nn

from pc3d.registry import MODELS

from ..structures import SparseVoxels
from .attention import attention_layer, init_transformer_weights, sinusoidal_position, zero_init_branches
from .conv_position import build_cpes, build_input_layer, check_cpe_options
from .sparse_depthwise import neighbor_tables
from .window_position import PositionMLP, window_relative_position

# The four partitions of a block, in order: (axis, shift).
PARTITIONS = (("x", False), ("x", True), ("y", False), ("y", True))
# Column of each position axis in the (b, z, y, x) voxel coordinates.
COORD_COLUMN = {"x": 3, "y": 2, "z": 1}
# Axes the learned in-window encoding can take (window_relative_position's column order).
MLP_POSITION_AXES = (("x", "y"), ("x", "y", "z"))


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
        position_axes: voxel axes of the position encoding, from 'x', 'y', 'z' (with 'mlp': ('x', 'y') or
            ('x', 'y', 'z')).
        position_encoding: 'sine' (the paper's sin/cos of absolute position) or 'mlp' (DSVT's learned
            encoding of the in-window position, see the module docstring).
        cpe_kernel: (kz, ky, kx) odd kernel of a conv position encoding before every block (see the module
            docstring); None: none, as in the paper.
        cpe_depthwise: the position encoding's conv is depthwise (True) or full C x C (False).
        cpe_every_layer: one position encoding before every layer instead of every block.
        cpe_interval: one position encoding before every ``cpe_interval`` layers (the first one included);
            None: every block (4), or every layer with ``cpe_every_layer``.
        cpe_batchnorm: BatchNorm between the position encoding's conv and its linear (``conv_position``).
        stem_kernel: (kz, ky, kx) odd kernel of a conv stem in place of the input projection; None: linear.
        cosine_attention: scaled cosine attention instead of dot-product attention.

    forward(SparseVoxels feats (V, in_channels) float32, coords (V, 4) int32 (b, z, y, x)) ->
    SparseVoxels feats (V, channels) on the same coords, spatial shape and batch.
    """

    def __init__(self, in_channels: int, channels: int = 128, num_heads: int = 8, num_blocks: int = 2,
                 window_shape: Sequence[int] = (13, 13), group_size: int = 144, ffn_channels: int = 256,
                 identity_init: bool = False, position_axes: Sequence[str] = ("x", "y"),
                 cpe_kernel: Optional[Sequence[int]] = None, cpe_depthwise: bool = True,
                 cpe_every_layer: bool = False, stem_kernel: Optional[Sequence[int]] = None,
                 cosine_attention: bool = False, position_encoding: str = "sine", cpe_batchnorm: bool = False,
                 cpe_interval: Optional[int] = None):
        super().__init__()
        unknown = [a for a in position_axes if a not in COORD_COLUMN]
        if unknown or not position_axes:
            raise ValueError(f"position_axes must be a non-empty subset of {tuple(COORD_COLUMN)}, "
                             f"got {tuple(position_axes)}")
        check_cpe_options(cpe_kernel, cpe_depthwise, cpe_every_layer=cpe_every_layer, cpe_batchnorm=cpe_batchnorm,
                          cpe_interval=cpe_interval is not None)
        if cpe_interval is not None and (cpe_every_layer or isinstance(cpe_interval, bool)
                                         or not isinstance(cpe_interval, int) or cpe_interval < 1):
            raise ValueError(f"cpe_interval must be a positive int of layers and not set with cpe_every_layer, "
                             f"got cpe_interval={cpe_interval!r}, cpe_every_layer={cpe_every_layer}")
        if position_encoding not in ("sine", "mlp"):
            raise ValueError(f"position_encoding must be 'sine' or 'mlp', got {position_encoding!r}")
        if position_encoding == "mlp" and tuple(position_axes) not in MLP_POSITION_AXES:
            raise ValueError(f"position_encoding='mlp' takes position_axes {MLP_POSITION_AXES[0]} or "
                             f"{MLP_POSITION_AXES[1]}, got {tuple(position_axes)}")
        self.position_ndim = len(position_axes)
        self.position_columns = [COORD_COLUMN[a] for a in position_axes]
        self.window_shape = tuple(int(w) for w in window_shape)
        self.group_size = int(group_size)
        self.channels = self.out_channels = channels
        self.stem, self.input_proj = build_input_layer(in_channels, channels, stem_kernel)
        self.layers = nn.ModuleList(attention_layer(channels, num_heads, ffn_channels, identity_init,
                                                    cosine_attention)
                                    for _ in range(num_blocks * len(PARTITIONS)))
        # Layers per position encoding; an encoding sits in front of layers 0, interval, 2 x interval, ...
        self.cpe_interval = 1 if cpe_every_layer else (cpe_interval or len(PARTITIONS))
        num_cpes = -(-len(self.layers) // self.cpe_interval)
        self.cpes = build_cpes(num_cpes, channels, cpe_kernel, cpe_depthwise, cpe_batchnorm)
        # One learned encoding for the unshifted windows, one for the shifted ones (as DSVT's two configs).
        self.pos_mlps = (nn.ModuleList(PositionMLP(self.position_ndim, channels) for _ in range(2))
                         if position_encoding == "mlp" else None)
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

    def positions(self, coords: torch.Tensor, spatial_shape):
        """coords (V, 4) int32 -> (unshifted, shifted) position encodings, each (V, channels) float32."""
        if self.pos_mlps is None:
            pos = sinusoidal_position(coords[:, self.position_columns].float(), self.channels)
            return pos, pos
        wy, wx = self.window_shape
        depth = int(spatial_shape[0]) if len(spatial_shape) == 3 else 1
        # The same shift the partition applies (half a window in x and y), so offsets are within its windows.
        shifts = ((0, 0, 0), (0, wy // 2, wx // 2))
        return tuple(mlp(window_relative_position(coords, (depth, wy, wx), shift, self.position_ndim))
                     for mlp, shift in zip(self.pos_mlps, shifts))

    def forward_features(self, feats: torch.Tensor, coords: torch.Tensor, spatial_shape) -> torch.Tensor:
        """feats (V, in_channels) float32, coords (V, 4) int32 (b, z, y, x) -> (V, channels)."""
        if coords.shape[0] == 0:
            return feats.new_zeros(0, self.channels)
        convs = ([self.stem.conv] if self.stem is not None else []) + \
            ([self.cpes[0].conv] if self.cpes is not None else [])
        tables = neighbor_tables(coords, spatial_shape, convs)  # shared where the kernels are equal
        x = self.stem(feats, tables[0]) if self.stem is not None else self.input_proj(feats)
        table = tables[-1] if self.cpes is not None else None
        parts = self.partitions(coords, spatial_shape)
        pos = self.positions(coords, spatial_shape)
        for i, layer in enumerate(self.layers):
            part = i % len(PARTITIONS)
            if table is not None and i % self.cpe_interval == 0:
                x = self.cpes[i // self.cpe_interval](x, table)
            indices, inverse, padding_mask = parts[part]
            x = layer(x, pos[PARTITIONS[part][1]], indices, inverse, padding_mask)
        return x

    def forward(self, voxels: SparseVoxels) -> SparseVoxels:
        feats = self.forward_features(voxels.feats, voxels.coords, voxels.spatial_shape)
        return SparseVoxels(feats, voxels.coords, tuple(voxels.spatial_shape), voxels.batch_size)
