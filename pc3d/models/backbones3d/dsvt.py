"""DSVT (Wang et al., CVPR 2023): dynamic sparse window attention over rotated sets.

Each window with n voxels is split into ``ceil(n / tau)`` sets of exactly tau slots
(``pc3d.ops.rotated_set_partition``), once in a y-major and once in an x-major in-window order. A block
is two post-norm set-attention layers (y-major sets, then x-major sets) on one window configuration,
wrapped in a residual + LayerNorm;
blocks alternate config 0 (window W, no shift) and config 1 (window W * hybrid_factor, shifted). A
learned MLP of each voxel's in-window position (one per stage and configuration) is added to queries
and keys; padded slots are masked keys. Stages are joined by attention-style 3D pooling.

DSVT-P runs on pillars (D = 1, 2D windows); DSVT-V on a 3D grid whose height is pooled away between
stages (e.g. 32 -> 8 -> 2 -> 1 slices).

``identity_init=True`` (not in the paper; for small-data training, configs/compare/README.md) uses
pre-norm residual layers whose branches start at zero, drops the per-block LayerNorm and the pooling's
LayerNorm, and starts the pooling's attention at zero: the untrained backbone is the encoder's features,
max-pooled between stages, and the attention learns what to add.

``cpe_kernel=(kz, ky, kx)`` puts a conditional position encoding (``conv_position``, PTv3's xCPE; depthwise
or, with ``cpe_depthwise=False``, full) in front of every block of every stage, on that stage's grid
(DSVT-P: use kz = 1). Not in the paper.

``stem_kernel=(kz, ky, kx)`` replaces the linear input projection with a conv stem (``conv_position.ConvStem``:
full submanifold conv, BatchNorm, GELU; PTv3's embedding) on the first stage's grid. Not in the paper.

``cosine_attention=True`` uses Swin V2's scaled cosine attention (``attention.GroupAttention``) in the set
attention. Not in the paper.
"""
from typing import Optional, Sequence

import torch
from torch import nn

from pc3d.registry import MODELS

from ..structures import SparseVoxels
from .attention import attention_layer, init_transformer_weights, real_slot_inverse, zero_init_branches
from .conv_position import build_cpes, build_input_layer, check_cpe_options
from .pooling import AttentionPooling
from .sparse_depthwise import neighbor_tables
from .window_position import PositionMLP, window_relative_position


def _per_stage(value, num_stages: int, name: str):
    """``value`` for each stage: a scalar/tuple shared by all, or a list with one entry per stage."""
    if isinstance(value, list):
        if len(value) != num_stages:
            raise ValueError(f"{name} needs one entry per stage ({num_stages}), got {len(value)}")
        return value
    return [value] * num_stages


@MODELS.register_module()
class DSVT(nn.Module):
    """Dynamic Sparse Voxel Transformer backbone.

    Args:
        in_channels: width of the incoming voxel features.
        channels: C per stage (int or list).
        num_heads: attention heads per stage.
        ffn_channels: FFN hidden width per stage.
        num_blocks: blocks per stage (each block = 2 set-attention layers).
        window_shape: config-0 window per stage, (Wz, Wy, Wx) or (Wy, Wx) meaning the whole height.
        set_size: tau per stage.
        hybrid_factor: (fz, fy, fx) multiplying config 0's window to get config 1's.
        shift: (dz, dy, dx) shift of config 1 per stage (None: half of config 0's window in y and x).
        pool_strides: (sz, sy, sx) attention pooling between consecutive stages (len = stages - 1).
        identity_init: start as the identity (see the module docstring) instead of the paper's post-norm.
        cpe_kernel: (kz, ky, kx) odd kernel of a conv position encoding before every block; None: none.
        cpe_depthwise: that encoding's conv is depthwise (True) or full C x C (False).
        stem_kernel: (kz, ky, kx) odd kernel of a conv stem in place of the input projection; None: linear.
        cosine_attention: scaled cosine attention instead of dot-product attention.

    forward(SparseVoxels feats (V, in_channels), coords (V, 4) int32 (b, z, y, x), grid (D, H, W)) ->
    SparseVoxels feats (V', C_last) on the grid pooled by ``prod(pool_strides)``.
    """

    def __init__(self, in_channels: int, channels=192, num_heads=8, ffn_channels=384, num_blocks=4,
                 window_shape: Sequence = (12, 12), set_size=36, hybrid_factor: Sequence[int] = (1, 2, 2),
                 shift: Optional[Sequence] = None, pool_strides: Sequence[Sequence[int]] = (),
                 identity_init: bool = False, cpe_kernel: Optional[Sequence[int]] = None,
                 cpe_depthwise: bool = True, stem_kernel: Optional[Sequence[int]] = None,
                 cosine_attention: bool = False):
        super().__init__()
        check_cpe_options(cpe_kernel, cpe_depthwise)
        num_stages = len(pool_strides) + 1
        self.channels = _per_stage(channels, num_stages, "channels")
        heads = _per_stage(num_heads, num_stages, "num_heads")
        ffn = _per_stage(ffn_channels, num_stages, "ffn_channels")
        self.num_blocks = _per_stage(num_blocks, num_stages, "num_blocks")
        windows = _per_stage(window_shape, num_stages, "window_shape")
        self.set_size = _per_stage(set_size, num_stages, "set_size")
        shifts = _per_stage(shift, num_stages, "shift")
        self.hybrid_factor = tuple(int(f) for f in hybrid_factor)
        self.window_shape, self.shift = [], []
        for w, s in zip(windows, shifts):
            w = tuple(int(v) for v in w)
            self.window_shape.append(w)
            self.shift.append(None if s is None else tuple(int(v) for v in s))
        self.pool_strides = [tuple(int(v) for v in s) for s in pool_strides]
        self.stem, self.input_proj = build_input_layer(in_channels, self.channels[0], stem_kernel)
        self.stages, self.pos_mlps, self.pools = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        self.block_norms = nn.ModuleList()
        # One list of position encodings per stage (one per block), or None.
        self.cpes = nn.ModuleList() if cpe_kernel is not None else None
        for s in range(num_stages):
            c = self.channels[s]
            ndim = 3 if len(self.window_shape[s]) == 3 else 2
            self.stages.append(nn.ModuleList(attention_layer(c, heads[s], ffn[s], identity_init, cosine_attention)
                                             for _ in range(2 * self.num_blocks[s])))
            # A stage with one block never uses config 1, so it gets no position MLP for it.
            self.pos_mlps.append(nn.ModuleList(PositionMLP(ndim, c) for _ in range(min(2, self.num_blocks[s]))))
            if self.cpes is not None:
                self.cpes.append(build_cpes(self.num_blocks[s], c, cpe_kernel, cpe_depthwise))
            # Pre-norm layers already carry the residual; a LayerNorm after each block would undo the identity.
            self.block_norms.append(nn.ModuleList(nn.LayerNorm(c) for _ in range(0 if identity_init
                                                                                 else self.num_blocks[s])))
            if s + 1 < num_stages:
                self.pools.append(AttentionPooling(c, self.pool_strides[s], heads[s],
                                                   out_channels=self.channels[s + 1], norm=not identity_init))
        self.out_channels = self.channels[-1]
        self.identity_init = bool(identity_init)
        init_transformer_weights(self)
        if identity_init:
            zero_init_branches([m for layers in self.stages for layer in layers for m in layer.branch_outputs()])
            for pool in self.pools:
                pool.reset_branch()
            if self.cpes is not None:
                zero_init_branches([cpe.proj for stage in self.cpes for cpe in stage])

    def _config(self, stage: int, cfg: int, spatial_shape):
        """(window (Wz, Wy, Wx), shift (dz, dy, dx)) of partition config ``cfg`` in ``stage``."""
        w = self.window_shape[stage]
        w = tuple(w) if len(w) == 3 else (spatial_shape[0],) + tuple(w)
        if cfg == 0:
            return w, (0, 0, 0)
        # Config 1's window is config 0's times the hybrid factor; z never exceeds the grid.
        w1 = tuple(min(wi * f, spatial_shape[0]) if i == 0 else wi * f
                   for i, (wi, f) in enumerate(zip(w, self.hybrid_factor)))
        shift = self.shift[stage]
        if shift is None:
            shift = (0 if w1[0] >= spatial_shape[0] else w1[0] // 2, w[1] // 2, w[2] // 2)
        return w1, shift

    def forward(self, voxels: SparseVoxels) -> SparseVoxels:
        from pc3d.ops import rotated_set_partition

        for s, layers in enumerate(self.stages):
            coords, shape, num = voxels.coords, voxels.spatial_shape, voxels.feats.shape[0]
            cpes = self.cpes[s] if self.cpes is not None else None
            stem = self.stem if s == 0 else None
            # The stem runs on the first stage's grid; with the CPE's kernel it shares its neighbour table.
            convs = ([cpes[0].conv] if cpes else []) + ([stem.conv] if stem is not None else [])
            tables = neighbor_tables(coords, shape, convs)
            x = voxels.feats
            if stem is not None:
                x = stem(x, tables.pop())
            elif s == 0:
                x = self.input_proj(x)
            if num:
                ndim = 3 if len(self.window_shape[s]) == 3 else 2
                configs = []
                for cfg in range(len(self.pos_mlps[s])):
                    window, shift = self._config(s, cfg, shape)
                    sets = rotated_set_partition(coords, shape, window, self.set_size[s], shift=shift)
                    pos = self.pos_mlps[s][cfg](window_relative_position(coords, window, shift, ndim))
                    configs.append([(sets.indices[o], real_slot_inverse(sets.indices[o], sets.padding_mask[o], num),
                                     sets.padding_mask[o], pos) for o in range(2)])
                table = tables.pop() if cpes else None
                for block in range(self.num_blocks[s]):
                    if table is not None:
                        x = cpes[block](x, table)
                    residual = x
                    for order in range(2):
                        indices, inverse, mask, pos = configs[block % 2][order]
                        x = layers[2 * block + order](x, pos, indices, inverse, mask)
                    # DSVT wraps each block (y-major + x-major layer) in its own residual + LayerNorm; the
                    # pre-norm layers of identity_init carry their own residual instead.
                    x = x if self.identity_init else self.block_norms[s][block](x + residual)
            voxels = SparseVoxels(x, coords, tuple(shape), voxels.batch_size)
            if s < len(self.pools):
                voxels = self.pools[s](voxels)
        return voxels
