"""ScatterFormer (He et al., ECCV 2024): scattered linear attention over whole windows.

The network of the official code (skyhehe123/ScatterFormer, ``pcdet/models/backbones_3d/scatterformer.py``,
Waymo config ``FEATURE_DIM 128, WIN_SIZE 12``), computed with spconv for its sparse convs, pc3d's compiled
scattered linear attention (``pc3d.ops.scattered_linear_attention``) and pc3d's depthwise submanifold convs:

1. Grid: the voxel grid ``(D, H, W)`` plus ``extra_z`` empty z-slices on top (OpenPCDet's ``sparse_shape`` is
   ``grid[::-1] + [1, 0, 0]``).
2. Stem: SubMConv3d 3x3x3 (no bias) + BN + ReLU; ``stem_blocks`` residual blocks (two SubMConv3d 3x3x3 with
   bias, BN, ReLU, identity shortcut); SparseConv3d (3, 1, 1) stride (2, 1, 1) (no bias) + BN + ReLU: z halved.
3. Stages (``num_layers`` layers each). At a stage's start the voxels are sorted by window
   ``(b, y // window_size, x // window_size)`` (all of z in one window) and keep that order through the stage.
   Each layer:

   * ``x = x + proj(SLA(BN(x)))``: qkv without bias, per head ``relu(q) (sum relu(k)^T v) / (relu(q) . sum
     relu(k) + 1e-6)`` over the voxels of a window;
   * cross-window interaction: ``x = BN(x)``; the four channel quarters go through a depthwise submanifold
     3x3x3 conv, a 1 x 1 x K (along x) conv, a 1 x K x 1 (along y) conv (all without bias, K = window_size +
     1) and the identity, and ``x = x + cat(...)`` (so the last quarter is doubled; no output projection,
     and the residual is the normalised ``x``);
   * ``x = x + fc2(relu(fc1(BN(x))))`` (hidden ``ffn_ratio * C``).

   After each stage BN; between stages a SparseConv3d 3x3x3 stride 2 padding 1 (no bias).
4. Pillar pooling (the official ``AttnPillarPool``): the query of a pillar is the max over its z-slices
   (spconv SparseMaxPool3d ``(P, 1, 1)``), the keys are its ``P`` z-slot features (zeros for empty slots,
   masked) plus a learned slot embedding, the values the slot features; 8-head attention,
   ``LayerNorm(query + attention)``. ``P = (D + extra_z) // 4`` must equal the depth reached after the
   strided convs (8 for Waymo's 32 slices).

``pool_pairing``: the official code hands the attention the queries in spconv's max-pool output order but
the keys in ``(b, y, x)``-sorted pillar order, so query row ``i`` attends to the slots of another pillar
whenever the two orders differ (they do: spconv emits pillars in the order it meets them in the
window-sorted rows). ``'official'`` (default) reproduces that pairing, which makes the output depend on the
row order of the input and on spconv's output order on the device; ``'matched'`` lets every pillar attend
to its own slots (permutation equivariant).

Row order: the output rows are in spconv's max-pool order over the window-sorted rows, as in the official
code; compare by coordinates.

BatchNorms use eps 1e-3, momentum 0.01. Weights start as the official modules' own initialisation (PyTorch
and spconv defaults; depthwise kernels standard normal; slot embedding N(0, 0.01^2)).
"""
from typing import Dict, Mapping, Sequence

import torch
from torch import nn

from pc3d.registry import MODELS

from ..structures import SparseVoxels
from ._spconv_compat import import_spconv
from .sparse_depthwise import DepthwiseSubmConv, neighbor_tables

POOL_PAIRINGS = ("official", "matched")


def _bn(channels: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(channels, eps=1e-3, momentum=0.01)


class StemBlock(nn.Module):
    """Residual block of two 3x3x3 submanifold convs with bias: relu(x + BN(conv(relu(BN(conv(x)))))).

    spconv 2.3.8 cannot fuse a bias into a conv on CPU, so the convs run without and the biases are added.
    """

    def __init__(self, spconv, channels: int):
        super().__init__()
        self.conv1 = spconv.SubMConv3d(channels, channels, 3, padding=1, bias=False, indice_key="stem")
        self.conv1_bias = nn.Parameter(torch.zeros(channels))
        self.bn1 = _bn(channels)
        self.conv2 = spconv.SubMConv3d(channels, channels, 3, padding=1, bias=False, indice_key="stem")
        self.conv2_bias = nn.Parameter(torch.zeros(channels))
        self.bn2 = _bn(channels)
        # spconv's (and the official) init of a conv's bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        bound = 1.0 / (27 * channels) ** 0.5
        nn.init.uniform_(self.conv1_bias, -bound, bound)
        nn.init.uniform_(self.conv2_bias, -bound, bound)

    def forward(self, x):
        out = self.conv1(x)
        out = out.replace_feature(torch.relu(self.bn1(out.features + self.conv1_bias)))
        out = self.conv2(out)
        return out.replace_feature(torch.relu(self.bn2(out.features + self.conv2_bias) + x.features))


class ScatterFormerStem(nn.Module):
    """(V, C_in) voxels on (D', H, W) -> (V', C) on (floor((D' - 3) / 2) + 1, H, W) (spconv tensors)."""

    def __init__(self, spconv, in_channels: int, channels: int, num_blocks: int):
        super().__init__()
        self.conv_in = spconv.SubMConv3d(in_channels, channels, 3, padding=1, bias=False, indice_key="stem")
        self.norm_in = _bn(channels)
        self.blocks = nn.ModuleList(StemBlock(spconv, channels) for _ in range(num_blocks))
        self.down = spconv.SparseConv3d(channels, channels, (3, 1, 1), stride=(2, 1, 1), padding=0, bias=False,
                                        indice_key="stem_down")
        self.down_norm = _bn(channels)

    def forward(self, x):
        x = self.conv_in(x)
        x = x.replace_feature(torch.relu(self.norm_in(x.features)))
        for block in self.blocks:
            x = block(x)
        x = self.down(x)
        return x.replace_feature(torch.relu(self.down_norm(x.features)))


class ScatteredLinearAttention(nn.Module):
    """(N, C) window-sorted rows -> (N, C): per-window ReLU linear attention (qkv without bias), then proj."""

    def __init__(self, channels: int, num_heads: int):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"channels ({channels}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.qkv = nn.Linear(channels, 3 * channels, bias=False)
        self.proj = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, offsets: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        from pc3d.ops import scattered_linear_attention

        n, c = x.shape
        h = self.num_heads
        q, k, v = self.qkv(x).view(n, 3, h, c // h).unbind(dim=1)
        out = scattered_linear_attention(q.contiguous(), k.contiguous(), v.contiguous(), offsets, counts)
        return self.proj(out.reshape(n, c))


class ScatterFormerLayer(nn.Module):
    """One layer on window-sorted rows: SLA, cross-window interaction, FFN (see the module docstring)."""

    def __init__(self, channels: int, num_heads: int, conv_size: int, ffn_ratio: int):
        super().__init__()
        if channels % 4:
            raise ValueError(f"channels must be a multiple of 4 (channel quarters), got {channels}")
        self.quarter = channels // 4
        self.norm = _bn(channels)
        self.attn = ScatteredLinearAttention(channels, num_heads)
        self.cwi_norm = _bn(channels)
        self.convs = nn.ModuleList([DepthwiseSubmConv(self.quarter, (3, 3, 3), bias=False),
                                    DepthwiseSubmConv(self.quarter, (1, 1, conv_size), bias=False),
                                    DepthwiseSubmConv(self.quarter, (1, conv_size, 1), bias=False)])
        self.ffn_norm = _bn(channels)
        self.fc1 = nn.Linear(channels, ffn_ratio * channels)
        self.fc2 = nn.Linear(ffn_ratio * channels, channels)

    def forward(self, x: torch.Tensor, offsets: torch.Tensor, counts: torch.Tensor, tables) -> torch.Tensor:
        x = x + self.attn(self.norm(x), offsets, counts)
        x = self.cwi_norm(x)
        parts = torch.split(x, self.quarter, dim=1)
        x = x + torch.cat([conv(p, t) for conv, p, t in zip(self.convs, parts[:3], tables)] + [parts[3]], dim=1)
        return x + self.fc2(torch.relu(self.fc1(self.ffn_norm(x))))


class ScatterFormerStage(nn.Module):
    """Window sort, ``num_layers`` layers, BatchNorm: (V, C) rows -> (V, C) rows in window order."""

    def __init__(self, channels: int, num_heads: int, num_layers: int, window_size: int, conv_size: int,
                 ffn_ratio: int):
        super().__init__()
        self.window_size = window_size
        self.layers = nn.ModuleList(ScatterFormerLayer(channels, num_heads, conv_size, ffn_ratio)
                                    for _ in range(num_layers))
        self.norm = _bn(channels)

    def forward(self, feats: torch.Tensor, coords: torch.Tensor, shape):
        """feats (V, C), coords (V, 4) int32 on grid ``shape`` (D, H, W) -> (feats, coords) in window order."""
        # Windows numbered in (b, y // w, x // w) order, rows ordered by torch.sort of those numbers as in the
        # official code. That sort is not stable: the order it leaves inside a window decides the row order of
        # spconv's later outputs, and with it the official pillar pooling's pairing (module docstring).
        c = coords.long()
        w = self.window_size
        cols = -(-shape[2] // w)
        key = (c[:, 0] * -(-shape[1] // w) + c[:, 2] // w) * cols + c[:, 3] // w
        _, window = torch.unique(key, return_inverse=True)
        window, order = torch.sort(window)
        counts = torch.bincount(window)
        offsets = torch.cumsum(counts, 0) - counts
        feats, coords = feats[order], coords[order]
        if self.layers:
            # Every layer's convs have the same kernels on the same voxels: one lookup per kernel.
            tables = neighbor_tables(coords, shape, self.layers[0].convs)
            for layer in self.layers:
                feats = layer(feats, offsets, counts, tables)
        return self.norm(feats), coords


class PillarAttentionPool(nn.Module):
    """SparseVoxels on (P, H, W) -> one row per occupied pillar on (1, H, W): LN(max + Attn(max, slots)).

    Args:
        spconv: the spconv module (for the max-pool that gives the queries and the output rows).
        channels: C.
        depth: P, the z extent of the incoming grid (slots per pillar).
        num_heads: attention heads (8 in the official code, whatever the backbone's head count).
        pairing: 'official' or 'matched' (see the module docstring).
    """

    def __init__(self, spconv, channels: int, depth: int, num_heads: int = 8, pairing: str = "official"):
        super().__init__()
        if pairing not in POOL_PAIRINGS:
            raise ValueError(f"pool_pairing must be one of {POOL_PAIRINGS}, got {pairing!r}")
        self.depth, self.pairing = depth, pairing
        self.max_pool = spconv.SparseMaxPool3d((depth, 1, 1), stride=(depth, 1, 1), padding=0)
        self.slot_embedding = nn.Parameter(torch.empty(depth, channels))
        nn.init.normal_(self.slot_embedding, std=0.01)
        self.attn = nn.MultiheadAttention(channels, num_heads, batch_first=True)
        self.norm = nn.LayerNorm(channels)

    def forward(self, x):
        """spconv tensor (V, C) on (P, H, W) -> (feats (N, C), coords (N, 4) int32 (b, 0, y, x), shape)."""
        src = self.max_pool(x)
        feats, idx = x.features, x.indices.long()
        _, h, w = x.spatial_shape
        # Pillars numbered in (b, y, x) order, each voxel's slot is its z.
        pillar_key = (idx[:, 0] * h + idx[:, 2]) * w + idx[:, 3]
        keys, pillar = torch.unique(pillar_key, return_inverse=True)
        n, p, c = keys.shape[0], self.depth, feats.shape[1]
        flat = pillar * p + idx[:, 1]
        slots = feats.new_zeros(n * p, c).index_copy(0, flat, feats).view(n, p, c)
        present = torch.zeros(n * p, dtype=torch.bool, device=feats.device).index_fill(0, flat, True).view(n, p)
        if self.pairing == "matched":
            out_idx = src.indices.long()
            rows = torch.searchsorted(keys, (out_idx[:, 0] * h + out_idx[:, 2]) * w + out_idx[:, 3])
            slots, present = slots[rows], present[rows]
        query = src.features.unsqueeze(1)
        out, _ = self.attn(query, slots + self.slot_embedding, slots, key_padding_mask=~present, need_weights=False)
        return self.norm(out.squeeze(1) + src.features), src.indices, tuple(int(s) for s in src.spatial_shape)


@MODELS.register_module()
class ScatterFormer(nn.Module):
    """ScatterFormer 3D backbone with its spconv stem and pillar pooling (the official network).

    Args:
        in_channels: width of the incoming voxel features (the VFE's last width, 64).
        channels: C (``FEATURE_DIM``, 128).
        num_heads: SLA heads (4).
        num_layers: layers per stage, one entry per stage ((3, 3)); a stride-2 conv between stages.
        window_size: square window in (y, x) voxels, spanning all of z (``WIN_SIZE``, 12).
        conv_size: K of the 1 x K and K x 1 depthwise convs (window_size + 1 in the official code; None: that).
        ffn_ratio: FFN hidden width / C (2).
        grid_depth: D of the incoming voxel grid (32 on Waymo); checked in forward.
        extra_z: empty z-slices added on top of the grid (1, OpenPCDet's ``sparse_shape``).
        stem_blocks: residual blocks in the stem (3).
        pool_heads: heads of the pillar pooling's attention (8).
        pool_pairing: 'official' or 'matched' query/slot pairing of the pillar pooling (module docstring).

    forward(SparseVoxels feats (V, in_channels), coords (V, 4) int32 (b, z, y, x), grid (D, H, W)) ->
    SparseVoxels feats (N, C), coords (N, 4) int32 (b, 0, y', x') on (1, H', W'), one row per occupied pillar,
    with H' = ceil(H / 2^(stages - 1)) (240 x 240 from Waymo's 480 x 480: BEV stride 2).
    """

    def __init__(self, in_channels: int, channels: int = 128, num_heads: int = 4, num_layers: Sequence[int] = (3, 3),
                 window_size: int = 12, conv_size: int = None, ffn_ratio: int = 2, grid_depth: int = 32,
                 extra_z: int = 1, stem_blocks: int = 3, pool_heads: int = 8, pool_pairing: str = "official"):
        super().__init__()
        if pool_pairing not in POOL_PAIRINGS:
            raise ValueError(f"pool_pairing must be one of {POOL_PAIRINGS}, got {pool_pairing!r}")
        num_layers = [int(n) for n in num_layers]
        if not num_layers:
            raise ValueError("num_layers needs at least one stage")
        spconv = import_spconv()
        self.grid_depth, self.extra_z = int(grid_depth), int(extra_z)
        self.window_size = int(window_size)
        self.conv_size = int(conv_size) if conv_size is not None else self.window_size + 1
        depth = self.grid_depth + self.extra_z
        # z after the stem's (3, 1, 1) stride-2 conv and each stage's 3x3x3 stride-2 padding-1 conv.
        z = (depth - 3) // 2 + 1
        for _ in num_layers[1:]:
            z = (z - 1) // 2 + 1
        pool_depth = depth // 4
        if z != pool_depth or z < 1:
            raise ValueError(f"grid_depth={grid_depth} + extra_z={extra_z}: the strided convs leave {z} z-slices, "
                             f"but the pillar pooling takes (D + extra_z) // 4 = {pool_depth}")
        self.stem = ScatterFormerStem(spconv, in_channels, channels, stem_blocks)
        self.stages = nn.ModuleList(ScatterFormerStage(channels, num_heads, n, self.window_size, self.conv_size,
                                                       ffn_ratio) for n in num_layers)
        self.downs = nn.ModuleList(spconv.SparseConv3d(channels, channels, 3, stride=2, padding=1, bias=False,
                                                       indice_key=f"down{i}") for i in range(len(num_layers) - 1))
        self.pool = PillarAttentionPool(spconv, channels, pool_depth, pool_heads, pool_pairing)
        self.out_channels = channels
        for m in self.modules():
            if isinstance(m, DepthwiseSubmConv):
                nn.init.normal_(m.weight)  # the official SparseDwConv's torch.randn

    def forward(self, voxels: SparseVoxels) -> SparseVoxels:
        spconv = import_spconv()  # not kept on the module: a module object would not deepcopy or pickle
        shape = tuple(int(s) for s in voxels.spatial_shape)
        if shape[0] != self.grid_depth:
            raise ValueError(f"ScatterFormer was built for grid_depth={self.grid_depth}, got grid {shape}")
        b = voxels.batch_size
        if voxels.coords.shape[0] == 0:
            out_shape = (1, -(-shape[1] // 2 ** len(self.downs)), -(-shape[2] // 2 ** len(self.downs)))
            return SparseVoxels(voxels.feats.new_zeros(0, self.out_channels), voxels.coords.new_zeros(0, 4),
                                out_shape, b)
        sparse_shape = [shape[0] + self.extra_z, shape[1], shape[2]]
        x = self.stem(spconv.SparseConvTensor(voxels.feats, voxels.coords.int().contiguous(), sparse_shape, b))
        feats, coords, grid = x.features, x.indices, tuple(int(s) for s in x.spatial_shape)
        for i, stage in enumerate(self.stages):
            feats, coords = stage(feats, coords, grid)
            if i < len(self.downs):
                x = self.downs[i](spconv.SparseConvTensor(feats, coords.contiguous(), list(grid), b))
                feats, coords, grid = x.features, x.indices, tuple(int(s) for s in x.spatial_shape)
        feats, coords, grid = self.pool(spconv.SparseConvTensor(feats, coords.contiguous(), list(grid), b))
        return SparseVoxels(feats, coords, grid, b)

    def convert_official_state(self, official: Mapping[str, torch.Tensor], source: str) -> Dict[str, torch.Tensor]:
        """The official ``backbone_3d.*`` tensors (prefix stripped) -> this module's state_dict.

        spconv weights keep spconv 2.x's (out, kz, ky, kx, in) layout; a SparseDwConv weight (kz, ky, kx, C)
        becomes the depthwise conv's (kz * ky * kx, C) (same z-major tap order)."""
        from pc3d.apis.convert import CheckpointConversionError

        if source != "scatterformer":
            raise CheckpointConversionError(f"ScatterFormer takes 'scatterformer' checkpoints, not {source!r}")
        out = {}
        for key, target in self.state_dict().items():
            name = _official_name(key)
            value = official[name]
            if target.dim() == 2 and name.endswith(("conv_k.weight", "conv_h.weight", "conv_w.weight")):
                if value.dim() != 4 or value.shape[:3].numel() != target.shape[0]:
                    raise CheckpointConversionError(f"'{name}': depthwise kernel of shape {tuple(value.shape)}, "
                                                    f"expected (kz, ky, kx, C) with {target.shape[0]} taps")
                value = value.reshape(-1, value.shape[-1])
            out[key] = value
        return out


_STEM = {"conv_in.weight": "0.0.weight", "down.weight": "4.0.weight"}
_LAYER = {"norm": "norm_layers.{i}", "attn": "attn_layers.{i}", "cwi_norm": "cffn_layers.{i}.bn",
          "convs.0": "cffn_layers.{i}.conv_k", "convs.1": "cffn_layers.{i}.conv_h", "convs.2": "cffn_layers.{i}.conv_w",
          "ffn_norm": "cffn_layers.{i}.bn2", "fc1": "cffn_layers.{i}.fc1", "fc2": "cffn_layers.{i}.fc2"}


def _official_name(key: str) -> str:
    """pc3d ScatterFormer state_dict key -> the official module's key (without ``backbone_3d.``)."""
    parts = key.split(".")
    if parts[0] == "stem":
        rest = ".".join(parts[1:])
        if rest in _STEM:
            return "cpe." + _STEM[rest]
        if parts[1] == "norm_in":
            return "cpe.0.1." + parts[2]
        if parts[1] == "down_norm":
            return "cpe.4.1." + parts[2]
        if parts[1] == "blocks":  # stem.blocks.j.{conv1.weight, conv1_bias, bn1.*, ...}
            j, name = int(parts[2]), ".".join(parts[3:])
            name = name.replace("_bias", ".bias")
            return f"cpe.{j + 1}.{name}"
    if parts[0] == "stages":  # stages.s.{layers.i.<sub>..., norm.*}
        s = int(parts[1])
        if parts[2] == "norm":
            return f"stage{s + 1}.1.{parts[3]}"
        i, sub, rest = int(parts[3]), parts[4], parts[5:]
        if sub == "convs":
            sub, rest = f"convs.{rest[0]}", rest[1:]
        return f"stage{s + 1}.0." + _LAYER[sub].format(i=i) + "." + ".".join(rest)
    if parts[0] == "downs":
        return f"stage{int(parts[1]) + 1}.2.{parts[2]}"
    if parts[0] == "pool":
        sub = {"slot_embedding": "pos_embedding.weight", "attn": "self_attn", "norm": "norm"}[parts[1]]
        return ".".join(["app", sub] + parts[2:])
    raise KeyError(key)
