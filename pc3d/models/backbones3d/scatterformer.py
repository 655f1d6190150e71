"""ScatterFormer (He et al., ECCV 2024): scattered linear attention over whole windows.

Voxels are sorted by window (``pc3d.ops.sort_by_window``, no padding, windows of any size) and attend
with ReLU linear attention per window (``pc3d.ops.scattered_linear_attention``). Each block is three
pre-norm residual layers: SLA, cross-window interaction (depthwise sparse convolutions on channel
quarters: a 3x3x3 (pillars: 3x3) kernel, a 1xK kernel along x, a Kx1 kernel along y and the identity),
and a GELU FFN. Odd blocks shift the windows by half. A 3D grid is finally pooled per pillar by
attention into a BEV grid (D = 1).

``identity_init=True`` (not in the paper; for small-data training, configs/compare/README.md) starts the
three branches' output projections at zero and drops the output LayerNorm and the pooling's, so the
untrained backbone is the encoder's features max-pooled per pillar, and the blocks learn what to add.

``cpe_kernel=(kz, ky, kx)`` puts a conditional position encoding (``conv_position``, PTv3's xCPE; depthwise
or, with ``cpe_depthwise=False``, full) in front of every block. Not in the paper.

``stem_kernel=(kz, ky, kx)`` replaces the linear input projection with a conv stem (``conv_position.ConvStem``:
full submanifold conv, BatchNorm, GELU; PTv3's embedding). Not in the paper.
"""
from typing import Optional, Sequence

import torch
from torch import nn

from pc3d.registry import MODELS

from ..structures import SparseVoxels
from .attention import init_transformer_weights, zero_init_branches
from .conv_position import build_cpes, build_input_layer, check_cpe_options
from .pooling import AttentionPooling
from .sparse_depthwise import DepthwiseSubmConv, neighbor_tables


class ScatteredLinearAttention(nn.Module):
    """(V, C) features + window segments -> (V, C): per-window ReLU linear attention, then a projection."""

    def __init__(self, channels: int, num_heads: int):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"channels ({channels}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, order: torch.Tensor, offsets: torch.Tensor, counts: torch.Tensor):
        from pc3d.ops import scattered_linear_attention

        v_, c = x.shape
        h = self.num_heads
        q, k, v = self.qkv(x[order]).view(v_, 3, h, c // h).unbind(dim=1)
        out = scattered_linear_attention(q.contiguous(), k.contiguous(), v.contiguous(), offsets, counts)
        # Back from window order to voxel order.
        out = out.reshape(v_, c).index_copy(0, order, out.reshape(v_, c))
        return self.proj(out)


class CrossWindowInteraction(nn.Module):
    """Depthwise sparse convs on channel quarters: [kz x 3 x 3, 1 x K (x), K x 1 (y), identity]."""

    def __init__(self, channels: int, kernel: int, kz: int):
        super().__init__()
        if channels % 4:
            raise ValueError(f"channels must be a multiple of 4 (channel quarters), got {channels}")
        q = channels // 4
        self.quarter = q
        self.convs = nn.ModuleList([DepthwiseSubmConv(q, (kz, 3, 3)), DepthwiseSubmConv(q, (1, 1, kernel)),
                                    DepthwiseSubmConv(q, (1, kernel, 1))])
        self.proj = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, tables) -> torch.Tensor:
        parts = torch.split(x, self.quarter, dim=1)
        out = [conv(p, t) for conv, p, t in zip(self.convs, parts[:3], tables)] + [parts[3]]
        return self.proj(torch.cat(out, dim=1))


class ScatterFormerBlock(nn.Module):
    """x += SLA(LN(x)); x += CWI(LN(x)); x += FFN(LN(x))."""

    def __init__(self, channels: int, num_heads: int, ffn_channels: int, kernel: int, kz: int):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(channels), nn.LayerNorm(channels), nn.LayerNorm(channels)
        self.attn = ScatteredLinearAttention(channels, num_heads)
        self.cwi = CrossWindowInteraction(channels, kernel, kz)
        self.ffn = nn.Sequential(nn.Linear(channels, ffn_channels), nn.GELU(), nn.Linear(ffn_channels, channels))

    def branch_outputs(self):
        """The linears whose outputs are added to the residual stream."""
        return [self.attn.proj, self.cwi.proj, self.ffn[2]]

    def forward(self, x, segments, tables):
        x = x + self.attn(self.norm1(x), *segments)
        x = x + self.cwi(self.norm2(x), tables)
        return x + self.ffn(self.norm3(x))


@MODELS.register_module()
class ScatterFormer(nn.Module):
    """ScatterFormer backbone.

    Args:
        in_channels: width of the incoming voxel features.
        channels: C.
        num_heads: SLA heads (head dim C / heads).
        num_blocks: blocks (odd ones use half-window shifted windows).
        window_shape: (Wy, Wx) (whole height) or (Wz, Wy, Wx) window in voxels.
        kernel: K of the 1xK / Kx1 depthwise convs (odd).
        ffn_channels: FFN hidden width.
        pool_to_bev: pool each pillar's voxels by attention into one BEV cell when the grid has D > 1.
        grid_depth: D of the grid the backbone runs on (checked in forward).
        identity_init: start as the identity (see the module docstring); default the paper's layers.
        cpe_kernel: (kz, ky, kx) odd kernel of a conv position encoding before every block; None: none.
        cpe_depthwise: that encoding's conv is depthwise (True) or full C x C (False).
        stem_kernel: (kz, ky, kx) odd kernel of a conv stem in place of the input projection; None: linear.

    forward(SparseVoxels feats (V, in_channels), coords (V, 4) int32 (b, z, y, x), grid (D, H, W)) ->
    SparseVoxels feats (V', C): the same voxels, or with ``pool_to_bev`` one per occupied pillar on (1, H, W).
    """

    def __init__(self, in_channels: int, channels: int = 128, num_heads: int = 8, num_blocks: int = 4,
                 window_shape: Sequence[int] = (12, 12), kernel: int = 13, ffn_channels: int = 256,
                 pool_to_bev: bool = True, grid_depth: int = 1, identity_init: bool = False,
                 cpe_kernel: Optional[Sequence[int]] = None, cpe_depthwise: bool = True,
                 stem_kernel: Optional[Sequence[int]] = None):
        super().__init__()
        check_cpe_options(cpe_kernel, cpe_depthwise)
        self.window_shape = tuple(int(w) for w in window_shape)
        self.kernel = int(kernel)
        # 3x3x3 on a 3D grid, 3x3 on pillars (a z extent of 1 has no z neighbours to look at).
        self.kz = 3 if grid_depth > 1 else 1
        self.stem, self.input_proj = build_input_layer(in_channels, channels, stem_kernel)
        self.blocks = nn.ModuleList(ScatterFormerBlock(channels, num_heads, ffn_channels, self.kernel, self.kz)
                                    for _ in range(num_blocks))
        self.cpes = build_cpes(num_blocks, channels, cpe_kernel, cpe_depthwise)
        self.norm = nn.Identity() if identity_init else nn.LayerNorm(channels)
        self.pool = (AttentionPooling(channels, (grid_depth, 1, 1), num_heads, norm=not identity_init)
                     if pool_to_bev and grid_depth > 1 else None)
        self.grid_depth = grid_depth
        self.out_channels = channels
        init_transformer_weights(self)
        if identity_init:
            zero_init_branches([m for block in self.blocks for m in block.branch_outputs()])
            if self.cpes is not None:
                zero_init_branches([cpe.proj for cpe in self.cpes])
            if self.pool is not None:
                self.pool.reset_branch()

    def forward(self, voxels: SparseVoxels) -> SparseVoxels:
        from pc3d.ops import sort_by_window

        coords, shape = voxels.coords, tuple(voxels.spatial_shape)
        if shape[0] != self.grid_depth:
            raise ValueError(f"ScatterFormer was built for grid_depth={self.grid_depth}, got grid {shape}")
        if not coords.shape[0]:
            x = voxels.feats.new_zeros(0, self.out_channels)
        else:
            segments = []
            for shift in (False, True):
                seg = sort_by_window(coords, shape, self.window_shape, shift=shift)
                segments.append((seg.order, seg.offsets, seg.counts))
            # The stem's and the CPE's 3x3x3 kernels are usually the cross-window interaction's first: one
            # lookup serves all three.
            convs = ([*self.blocks[0].cwi.convs] if self.blocks else []) + \
                ([self.cpes[0].conv] if self.cpes else []) + ([self.stem.conv] if self.stem is not None else [])
            tables = neighbor_tables(coords, shape, convs)
            x = self.stem(voxels.feats, tables.pop()) if self.stem is not None else self.input_proj(voxels.feats)
            cpe_table = tables.pop() if self.cpes else None
            for i, block in enumerate(self.blocks):
                if cpe_table is not None:
                    x = self.cpes[i](x, cpe_table)
                x = block(x, segments[i % 2], tables)
        out = SparseVoxels(self.norm(x), coords, shape, voxels.batch_size)
        return self.pool(out) if self.pool is not None else out
