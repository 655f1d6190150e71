"""DSVT (Wang et al., CVPR 2023): dynamic sparse window attention over rotated sets.

The defaults compute the function of the authors' released code (OpenPCDet ``DSVT`` with ``DSVTBlock`` and
``Stage_ReductionAtt_Block``), so its checkpoints load through :meth:`DSVT.convert_official_state`.

Partition. Each window with n voxels is split into ``ceil(n / tau)`` sets of exactly tau slots
(``pc3d.ops.rotated_set_partition``), once in a y-major and once in an x-major in-window order. Padded
slots repeat a voxel and are masked as keys. Two window configurations per stage: config 0 (window W, no
shift) and config 1 (window ``W * hybrid_factor``, shifted by ``shift``).

Block. Two set-attention layers (y-major sets, then x-major sets, both of the block's configuration), then
``x = LN(x + block_input)``. Each layer is ``h = LN1(x + Attn(x + pos));  h = LN2(h + FFN(h));
x = LN(x + h)``: the released code wraps the post-norm attention + FFN layer in one more residual and
LayerNorm. The block's configuration alternates 0, 1, 0, ... with a block counter that runs across
stages (``alternate_across_stages``): in DSVT-V (one block per stage) stages 1 and 3 use config 1.

Position embedding. Learned, one MLP per (block, configuration): ``Linear(ndim, C) - BatchNorm1d - ReLU -
Linear(C, C)`` of the voxel's in-window offset ``(c + shift) mod W - W / 2`` in voxel units, columns
(x, y) or (x, y, z) (3-D where the window is more than one voxel high). It is added to queries and keys.
Layer i of every block takes configuration i's embedding (MLP (block, i) of config i's offsets), whatever
configuration the block's sets use: the released code does this (``position_by_layer=True``; its
checkpoints need it); ``False`` gives both layers the embedding of the block's own configuration.

Pooling between stages (DSVT-V). The children of a parent cell (stride ``(sz, sy, sx)``) fill a
``(P, sz*sy*sx, C)`` block whose empty slots are zero; the query is the max over all slots (empty ones
included), the keys are the slots plus a learned per-slot embedding, the values the slots, with no key
mask; ``out = LN(query + MHA(query, keys, values))`` with 8 heads whatever the stage's head count.
"""
from typing import Dict, List, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pc3d.registry import MODELS

from ..structures import SparseVoxels
from .attention import real_slot_inverse
from .pooling import pool_coords


def _per_stage(value, num_stages: int, name: str):
    """``value`` for each stage: a scalar/tuple shared by all, or a list with one entry per stage."""
    if isinstance(value, list):
        if len(value) != num_stages:
            raise ValueError(f"{name} needs one entry per stage ({num_stages}), got {len(value)}")
        return value
    return [value] * num_stages


def window_offsets(coords: torch.Tensor, window: Sequence[int], shift: Sequence[int], ndim: int) -> torch.Tensor:
    """In-window offset of each voxel from the window's centre, as DSVT's position embedding takes it.

    Args:
        coords: (V, 4) int32 voxel coords (b, z, y, x).
        window: (Wz, Wy, Wx) window size in voxels.
        shift: (dz, dy, dx) added to the coords before cutting windows (the partition's shift).
        ndim: 2 for columns (x, y), 3 for (x, y, z).

    Returns:
        (V, ndim) float32 ``(c + shift) mod W - W / 2``, each column in [-W/2, W/2).
    """
    c = coords[:, 1:].long() + torch.tensor(tuple(shift), device=coords.device)
    w = torch.tensor(tuple(window), device=coords.device)
    rel = (c % w).float() - w.float() / 2  # (V, 3) in z, y, x
    return rel[:, [2, 1, 0]][:, :ndim].contiguous()


class PositionEmbedding(nn.Module):
    """DSVT's learned position embedding: (V, ndim) in-window offsets -> (V, C).

    ``Linear(ndim, C) - BatchNorm1d(C) - ReLU - Linear(C, C)``; the BatchNorm normalises over all voxels of the
    batch in training and uses running statistics in eval.
    """

    def __init__(self, ndim: int, channels: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(ndim, channels), nn.BatchNorm1d(channels), nn.ReLU(inplace=True),
                                 nn.Linear(channels, channels))

    def forward(self, offsets: torch.Tensor) -> torch.Tensor:
        return self.net(offsets)


class SetAttentionLayer(nn.Module):
    """One DSVT encoder layer over rotated sets: (V, C) -> (V, C).

    ``h = LN1(x + MHA(q = k = x + pos, v = x)); h = LN2(h + FFN(h)); out = LN(x + h)`` with the attention inside
    each set (padded slots masked as keys) and a GELU FFN.
    """

    def __init__(self, channels: int, num_heads: int, ffn_channels: int):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"channels ({channels}) must be divisible by num_heads ({num_heads})")
        self.attn = nn.MultiheadAttention(channels, num_heads, batch_first=True)
        self.norm1 = nn.LayerNorm(channels)
        self.linear1 = nn.Linear(channels, ffn_channels)
        self.linear2 = nn.Linear(ffn_channels, channels)
        self.norm2 = nn.LayerNorm(channels)
        self.norm = nn.LayerNorm(channels)

    def forward(self, feats: torch.Tensor, pos: torch.Tensor, indices: torch.Tensor, inverse: torch.Tensor,
                padding_mask: torch.Tensor) -> torch.Tensor:
        """feats, pos (V, C); indices (Ns, tau) int64 voxel per slot; inverse (V,) int64 flat slot of each voxel's
        unmasked occurrence; padding_mask (Ns, tau) bool True = repeated voxel (masked key). Returns (V, C)."""
        grouped = feats[indices]
        qk = grouped + pos[indices]
        out = self.attn(qk, qk, grouped, key_padding_mask=padding_mask, need_weights=False)[0]
        h = self.norm1(feats + out.reshape(-1, feats.shape[1])[inverse])
        h = self.norm2(h + self.linear2(F.gelu(self.linear1(h))))
        return self.norm(feats + h)


class DSVTBlock(nn.Module):
    """Two set-attention layers (y-major, then x-major sets) and ``LN(x + block input)``, with the block's
    position embeddings (two, one per configuration, or one with ``position_by_layer=False``)."""

    def __init__(self, channels: int, num_heads: int, ffn_channels: int, pos_ndim: int, num_pos: int):
        super().__init__()
        self.layers = nn.ModuleList(SetAttentionLayer(channels, num_heads, ffn_channels) for _ in range(2))
        self.pos_embeds = nn.ModuleList(PositionEmbedding(pos_ndim, channels) for _ in range(num_pos))
        self.norm = nn.LayerNorm(channels)

    def forward(self, feats: torch.Tensor, sets, positions: Sequence[torch.Tensor]) -> torch.Tensor:
        """feats (V, C); sets: per layer (indices, inverse, padding_mask) of the block's configuration;
        positions: per layer (V, C) position embedding. Returns (V, C)."""
        x = feats
        for layer, (indices, inverse, mask), pos in zip(self.layers, sets, positions):
            x = layer(x, pos, indices, inverse, mask)
        return self.norm(x + feats)


class StagePooling(nn.Module):
    """DSVT's attention pooling between stages: SparseVoxels (V, C) on (D, H, W) -> (P, out_channels) on
    ``ceil((D, H, W) / stride)``.

    Slot of a child in its parent cell: ``((x mod sx) * sy + y mod sy) * sz + z mod sz``. Empty slots are zero,
    take part in the max of the query and are attended to (no key mask), as in the released code.

    Args:
        channels: C.
        stride: (sz, sy, sx).
        num_heads: heads of the attention (8 in the released code, whatever the stage's head count).
        out_channels: width after pooling; a Linear follows the LayerNorm when it differs from C (not in the
            released code, whose stages all have the same width).
    """

    def __init__(self, channels: int, stride: Sequence[int], num_heads: int = 8, out_channels: Optional[int] = None):
        super().__init__()
        self.stride = tuple(int(s) for s in stride)
        if len(self.stride) != 3 or min(self.stride) < 1:
            raise ValueError(f"pool stride must be (sz, sy, sx) of positive ints, got {tuple(stride)}")
        slots = self.stride[0] * self.stride[1] * self.stride[2]
        self.pos_embedding = nn.Parameter(torch.empty(slots, channels))
        nn.init.normal_(self.pos_embedding, std=0.01)
        self.attn = nn.MultiheadAttention(channels, num_heads, batch_first=True)
        self.norm = nn.LayerNorm(channels)
        out_channels = out_channels or channels
        self.out_proj = nn.Linear(channels, out_channels) if out_channels != channels else nn.Identity()
        self.out_channels = out_channels

    def forward(self, voxels: SparseVoxels) -> SparseVoxels:
        feats = voxels.feats
        parent_coords, parent, _, shape = pool_coords(voxels.coords, voxels.spatial_shape, self.stride)
        p, k, c = parent_coords.shape[0], self.pos_embedding.shape[0], feats.shape[1]
        if p == 0:
            return SparseVoxels(self.out_proj(feats), parent_coords, shape, voxels.batch_size)
        sz, sy, sx = self.stride
        cz, cy, cx = (voxels.coords[:, i].long() for i in (1, 2, 3))
        slot = ((cx % sx) * sy + cy % sy) * sz + cz % sz
        # Each (parent, slot) holds at most one voxel: a voxel's cell is unique in the child grid.
        dense = feats.new_zeros(p * k, c).index_copy(0, parent * k + slot, feats).view(p, k, c)
        query = dense.amax(dim=1, keepdim=True)
        out = self.attn(query, dense + self.pos_embedding, dense, need_weights=False)[0]
        pooled = self.out_proj(self.norm(query + out)[:, 0])
        return SparseVoxels(pooled, parent_coords, shape, voxels.batch_size)


@MODELS.register_module()
class DSVT(nn.Module):
    """Dynamic Sparse Voxel Transformer backbone (DSVT-P: one stage on pillars; DSVT-V: stages joined by pooling).

    Args:
        in_channels: width of the incoming voxel features (a Linear projects them when it differs from the first
            stage's width; the released code has none).
        channels: C per stage (int or list).
        num_heads: attention heads per stage.
        ffn_channels: FFN hidden width per stage.
        num_blocks: blocks per stage (each block = 2 set-attention layers).
        window_shape: config-0 window per stage, (Wz, Wy, Wx), or (Wy, Wx) meaning the whole height (pillars).
        set_size: tau per stage.
        hybrid_factor: (fz, fy, fx) multiplying config 0's window to get config 1's.
        shift: (dz, dy, dx) shift of config 1 per stage (None: half of config 0's window in y and x). dz is 0
            where the window spans the whole height.
        pool_strides: (sz, sy, sx) attention pooling between consecutive stages (len = stages - 1).
        pool_num_heads: heads of the pooling's attention (8 in the released code).
        position_by_layer: layer i of every block takes configuration i's position embedding (released code);
            False: both layers take the embedding of the block's configuration (one MLP per block).
        alternate_across_stages: the configuration alternates with a block counter over all stages (released
            code); False: it restarts at config 0 in each stage.

    forward(SparseVoxels feats (V, in_channels), coords (V, 4) int32 (b, z, y, x), grid (D, H, W)) ->
    SparseVoxels feats (V', C_last) on the grid pooled by ``prod(pool_strides)`` (V' = V without pooling).
    """

    def __init__(self, in_channels: int, channels=192, num_heads=8, ffn_channels=384, num_blocks=4,
                 window_shape: Sequence = (12, 12), set_size=36, hybrid_factor: Sequence[int] = (1, 2, 2),
                 shift: Optional[Sequence] = None, pool_strides: Sequence[Sequence[int]] = (),
                 pool_num_heads: int = 8, position_by_layer: bool = True, alternate_across_stages: bool = True):
        super().__init__()
        num_stages = len(pool_strides) + 1
        self.channels = _per_stage(channels, num_stages, "channels")
        heads = _per_stage(num_heads, num_stages, "num_heads")
        ffn = _per_stage(ffn_channels, num_stages, "ffn_channels")
        self.num_blocks = _per_stage(num_blocks, num_stages, "num_blocks")
        windows = _per_stage(window_shape, num_stages, "window_shape")
        self.set_size = _per_stage(set_size, num_stages, "set_size")
        shifts = _per_stage(shift, num_stages, "shift")
        self.hybrid_factor = tuple(int(f) for f in hybrid_factor)
        if len(self.hybrid_factor) != 3:
            raise ValueError(f"hybrid_factor must be (fz, fy, fx), got {tuple(hybrid_factor)}")
        self.window_shape, self.shift = [], []
        for w, s in zip(windows, shifts):
            w = tuple(int(v) for v in w)
            if len(w) not in (2, 3):
                raise ValueError(f"window_shape must be (Wz, Wy, Wx) or (Wy, Wx), got {w}")
            self.window_shape.append(w)
            self.shift.append(None if s is None else tuple(int(v) for v in s))
        self.pool_strides = [tuple(int(v) for v in s) for s in pool_strides]
        self.position_by_layer = bool(position_by_layer)
        self.alternate_across_stages = bool(alternate_across_stages)
        self.input_proj = nn.Linear(in_channels, self.channels[0]) if in_channels != self.channels[0] \
            else nn.Identity()
        self.stages, self.pools = nn.ModuleList(), nn.ModuleList()
        for s in range(num_stages):
            w = self.window_shape[s]
            # The embedding is 3-D where the window is more than one voxel high; (Wy, Wx) windows are pillars.
            ndim = 3 if len(w) == 3 and w[0] > 1 else 2
            self.stages.append(nn.ModuleList(
                DSVTBlock(self.channels[s], heads[s], ffn[s], ndim, 2 if self.position_by_layer else 1)
                for _ in range(self.num_blocks[s])))
            if s + 1 < num_stages:
                self.pools.append(StagePooling(self.channels[s], self.pool_strides[s], pool_num_heads,
                                               out_channels=self.channels[s + 1]))
        self.out_channels = self.channels[-1]
        # Xavier-uniform for every weight matrix (and the pooling's slot embedding), as the released code.
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def _pos_ndim(self, stage: int) -> int:
        return self.stages[stage][0].pos_embeds[0].net[0].in_features

    def _config(self, stage: int, cfg: int, spatial_shape):
        """(window (Wz, Wy, Wx), shift (dz, dy, dx)) of partition config ``cfg`` in ``stage``."""
        w = self.window_shape[stage]
        w = tuple(w) if len(w) == 3 else (spatial_shape[0],) + tuple(w)
        if cfg == 0:
            return w, (0, 0, 0)
        w1 = tuple(wi * f for wi, f in zip(w, self.hybrid_factor))
        shift = self.shift[stage]
        if shift is None:
            shift = (w1[0] // 2, w[1] // 2, w[2] // 2)
        if w1[0] == spatial_shape[0]:  # a window as high as the grid is never shifted in z
            shift = (0,) + tuple(shift[1:])
        return w1, tuple(shift)

    def block_configs(self) -> List[List[int]]:
        """Window configuration (0 or 1) of each block, per stage."""
        out, counter = [], 0
        for blocks in self.num_blocks:
            if not self.alternate_across_stages:
                counter = 0
            out.append([(counter + b) % 2 for b in range(blocks)])
            counter += blocks
        return out

    def forward(self, voxels: SparseVoxels) -> SparseVoxels:
        from pc3d.ops import rotated_set_partition

        configs = self.block_configs()
        x = self.input_proj(voxels.feats)
        for s, blocks in enumerate(self.stages):
            coords, shape, num = voxels.coords, tuple(voxels.spatial_shape), voxels.feats.shape[0]
            if num:
                ndim = self._pos_ndim(s)
                windows = [self._config(s, cfg, shape) for cfg in range(2)]
                offsets = [window_offsets(coords, w, sh, ndim) for w, sh in windows]
                sets = {}
                for cfg in sorted(set(configs[s])):
                    window, shift = windows[cfg]
                    part = rotated_set_partition(coords, shape, window, self.set_size[s], shift=shift)
                    sets[cfg] = [(part.indices[o], real_slot_inverse(part.indices[o], part.padding_mask[o], num),
                                  part.padding_mask[o]) for o in range(2)]
                for block, cfg in zip(blocks, configs[s]):
                    if self.position_by_layer:
                        positions = [block.pos_embeds[i](offsets[i]) for i in range(2)]
                    else:
                        positions = [block.pos_embeds[0](offsets[cfg])] * 2
                    x = block(x, sets[cfg], positions)
            voxels = SparseVoxels(x, coords, shape, voxels.batch_size)
            if s < len(self.pools):
                voxels = self.pools[s](voxels)
                x = voxels.feats
        return voxels

    def convert_official_state(self, official: Mapping[str, torch.Tensor], source: str) -> Dict[str, torch.Tensor]:
        """This module's state dict from the released code's ``backbone_3d.*`` tensors (prefix stripped).

        Official keys -> pc3d keys (s stage, b block, i layer / configuration):
        ``input_layer.posembed_layers.s.b.i.position_embedding_head.*`` -> ``stages.s.b.pos_embeds.i.net.*``;
        ``stage_s.b.encoder_list.i.win_attn.self_attn.*`` -> ``stages.s.b.layers.i.attn.*``;
        ``stage_s.b.encoder_list.i.win_attn.{linear1,linear2,norm1,norm2}.*`` -> ``stages.s.b.layers.i.*``;
        ``stage_s.b.encoder_list.i.norm.*`` -> ``stages.s.b.layers.i.norm.*``;
        ``residual_norm_stage_s.b.*`` -> ``stages.s.b.norm.*``;
        ``stage_s_reduction.{pos_embedding, norm.*, self_attn.*}`` -> ``pools.s.{pos_embedding, norm.*, attn.*}``.
        A missing official key raises ``KeyError`` (the conversion framework names it); official keys left unread
        and shape mismatches are reported by the framework.
        """
        from pc3d.apis.convert import CheckpointConversionError

        if source not in ("openpcdet",):
            raise CheckpointConversionError(f"DSVT takes official weights from 'openpcdet' checkpoints, not {source!r}")
        unsupported = []
        if not self.position_by_layer:
            unsupported.append("position_by_layer=False (the released code gives layer i configuration i's "
                               "embedding)")
        if not isinstance(self.input_proj, nn.Identity):
            unsupported.append("in_channels != channels[0] (the released code has no input projection)")
        if any(not isinstance(p.out_proj, nn.Identity) for p in self.pools):
            unsupported.append("stage widths that differ (the released pooling keeps the width)")
        if unsupported:
            raise CheckpointConversionError("DSVT options without an official counterpart: " + "; ".join(unsupported))
        out = {}
        for key in self.state_dict():
            parts = key.split(".")
            if parts[0] == "stages":
                s, b, rest = parts[1], parts[2], parts[3:]
                if rest[0] == "pos_embeds":  # pos_embeds.i.net.<rest>
                    src = f"input_layer.posembed_layers.{s}.{b}.{rest[1]}.position_embedding_head." + \
                        ".".join(rest[3:])
                elif rest[0] == "norm":
                    src = f"residual_norm_stage_{s}.{b}." + ".".join(rest[1:])
                else:  # layers.i.<module>.<rest>
                    i, module, tail = rest[1], rest[2], ".".join(rest[3:])
                    if module == "norm":
                        src = f"stage_{s}.{b}.encoder_list.{i}.norm.{tail}"
                    else:
                        module = "self_attn" if module == "attn" else module
                        src = f"stage_{s}.{b}.encoder_list.{i}.win_attn.{module}.{tail}"
            elif parts[0] == "pools":
                s, module, tail = parts[1], parts[2], ".".join(parts[3:])
                module = "self_attn" if module == "attn" else module
                src = f"stage_{s}_reduction.{module}" + (f".{tail}" if tail else "")
            else:
                raise CheckpointConversionError(f"DSVT tensor {key!r} has no official counterpart")
            out[key] = official[src]
        return out
