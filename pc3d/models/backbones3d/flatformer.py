"""FlatFormer (Liu et al., CVPR 2023): attention in equal-size groups of flattened windows.

The defaults are the official Waymo middle encoder (mit-han-lab/flatformer,
``configs/flatformer/flatformer_waymo_D1_2x_3class.py``): C = 128, 8 heads, 2 blocks, 13 x 13 windows, groups of
G = 144, FFN 2C. It computes the official function (checked against the official code's outputs, weights converted
by :meth:`FlatFormer.convert_official_state`):

* Partition (``pc3d.ops.flat_window_partition``): voxels sorted along a snake curve over windows (and a snake
  inside each window), cut into groups of exactly G voxels per sample. Each block runs four layers on the
  x-major, x-major shifted, y-major and y-major shifted orders. A sample's short last group (r < G voxels) is
  filled with the previous group's last G - r voxels, which take part in the attention as ordinary keys (the
  official rule, ``last_group='previous'``); their own outputs are dropped.
* Position encoding: the sinusoid of the voxel's absolute (x, y) index, added to queries and keys. Each axis
  takes ``P = (C // 4) * 2`` channels interleaving sin and cos per frequency:
  ``[sin(x / T^(0/P)), cos(x / T^(0/P)), sin(x / T^(2/P)), cos(x / T^(2/P)), ...]``, x's P channels then y's,
  zeros for any channels left over; T = 10000. z is not encoded (the official model runs on pillars).
* Layer (post-norm): ``x = LN1(x + MHA(q = k = x + pe, v = x)); x = LN2(x + fc2(gelu(fc1(x))))``.

The official module takes features of its own width; ``in_channels != channels`` adds a linear input projection
(not in the official model).
"""
from typing import Dict, Mapping, Optional, Sequence

import torch
from torch import nn

from pc3d.registry import MODELS

from ..structures import SparseVoxels
from .attention import PostNormAttentionLayer

# The four partitions of a block, in order: (axis, shift).
PARTITIONS = (("x", False), ("x", True), ("y", False), ("y", True))


def flatformer_position(coords: torch.Tensor, channels: int, temperature: float = 10000.0) -> torch.Tensor:
    """FlatFormer's sinusoidal encoding of the voxel (x, y) index (layout in the module docstring).

    Args:
        coords: (V, 4) int voxel coords (b, z, y, x).
        channels: C, output width; ``P = (C // 4) * 2`` channels per axis, ``C - 2P`` zero columns.
        temperature: T.

    Returns:
        (V, C) float32.
    """
    length = (channels // 4) * 2
    # Frequency of channel i: T^(2 (i // 2) / P), so sin and cos of one frequency sit side by side.
    i = torch.arange(length, dtype=torch.float32, device=coords.device)
    inv_freq = temperature ** (2 * torch.div(i, 2, rounding_mode="floor") / length)
    parts = []
    for column in (3, 2):  # x, then y
        angle = coords[:, column, None].float() / inv_freq[None, :]
        parts.append(torch.stack([angle[:, 0::2].sin(), angle[:, 1::2].cos()], dim=-1).flatten(1))
    pe = torch.cat(parts, dim=1)
    return nn.functional.pad(pe, (0, channels - pe.shape[1]))


@MODELS.register_module()
class FlatFormer(nn.Module):
    """Sparse voxels in, same voxels with transformed features out.

    Args:
        in_channels: width of the incoming voxel features (the official model: ``channels``).
        channels: C, model width; None: ``in_channels``.
        num_heads: attention heads.
        num_blocks: blocks of four layers (x, x-shift, y, y-shift).
        window_shape: (wy, wx) window size in voxels (the partition ignores z).
        group_size: G, voxels per attention group.
        ffn_channels: hidden width of each layer's GELU FFN; None: 2C, as the official model.
        pos_temperature: T of the sinusoidal position encoding.

    forward(SparseVoxels feats (V, in_channels) float32, coords (V, 4) int32 (b, z, y, x)) ->
    SparseVoxels feats (V, channels) on the same coords, spatial shape and batch.
    """

    def __init__(self, in_channels: int = 128, channels: Optional[int] = None, num_heads: int = 8,
                 num_blocks: int = 2, window_shape: Sequence[int] = (13, 13), group_size: int = 144,
                 ffn_channels: Optional[int] = None, pos_temperature: float = 10000.0):
        super().__init__()
        channels = in_channels if channels is None else channels
        if channels < 4:
            raise ValueError(f"channels must be at least 4 for the (x, y) sin/cos encoding, got {channels}")
        self.window_shape = tuple(int(w) for w in window_shape)
        if len(self.window_shape) != 2:
            raise ValueError(f"window_shape must be (wy, wx), got {tuple(window_shape)}")
        self.group_size = int(group_size)
        self.pos_temperature = float(pos_temperature)
        self.channels = self.out_channels = channels
        self.input_proj = nn.Identity() if in_channels == channels else nn.Linear(in_channels, channels)
        ffn = 2 * channels if ffn_channels is None else ffn_channels
        self.layers = nn.ModuleList(PostNormAttentionLayer(channels, num_heads, ffn)
                                    for _ in range(num_blocks * len(PARTITIONS)))
        self.reset_parameters()

    @property
    def num_blocks(self) -> int:
        return len(self.layers) // len(PARTITIONS)

    def reset_parameters(self) -> None:
        """The official initialisation: Xavier-uniform on every weight matrix, with the attention's q, k, v
        projections drawn as one (3C, C) matrix (``nn.MultiheadAttention.in_proj_weight``); zero attention
        biases; the FFN linears' biases keep ``nn.Linear``'s default; LayerNorms ones and zeros."""
        for layer in self.layers:
            attn, c = layer.attn, self.channels
            in_proj = torch.empty(3 * c, c)
            nn.init.xavier_uniform_(in_proj)
            with torch.no_grad():
                attn.qk.weight.copy_(in_proj[:2 * c])
                attn.v.weight.copy_(in_proj[2 * c:])
            for bias in (attn.qk.bias, attn.v.bias, attn.proj.bias):
                nn.init.zeros_(bias)
            nn.init.xavier_uniform_(attn.proj.weight)
            for linear in (layer.ffn[0], layer.ffn[2]):
                linear.reset_parameters()
                nn.init.xavier_uniform_(linear.weight)
            for norm in (layer.norm1, layer.norm2):
                norm.reset_parameters()
        if isinstance(self.input_proj, nn.Linear):
            self.input_proj.reset_parameters()

    def partitions(self, coords: torch.Tensor, spatial_shape):
        """The four (indices (Ng, G), inverse (V,), padding_mask (Ng, G)) of a block; shared by all blocks
        because the voxel set does not change."""
        from pc3d.ops import flat_window_partition

        out = []
        for axis, shift in PARTITIONS:
            p = flat_window_partition(coords, spatial_shape, self.window_shape, self.group_size, axis=axis,
                                      shift=shift, last_group="previous")
            out.append((p.indices, p.inverse, p.padding_mask))
        return out

    def forward_features(self, feats: torch.Tensor, coords: torch.Tensor, spatial_shape) -> torch.Tensor:
        """feats (V, in_channels) float32, coords (V, 4) int32 (b, z, y, x) -> (V, channels)."""
        if coords.shape[0] == 0:
            return feats.new_zeros(0, self.channels)
        x = self.input_proj(feats)
        parts = self.partitions(coords, spatial_shape)
        pos = flatformer_position(coords, self.channels, self.pos_temperature).to(x.dtype)
        for i, layer in enumerate(self.layers):
            indices, inverse, padding_mask = parts[i % len(PARTITIONS)]
            x = layer(x, pos, indices, inverse, padding_mask)
        return x

    def forward(self, voxels: SparseVoxels) -> SparseVoxels:
        feats = self.forward_features(voxels.feats, voxels.coords, voxels.spatial_shape)
        return SparseVoxels(feats, voxels.coords, tuple(voxels.spatial_shape), voxels.batch_size)

    def convert_official_state(self, official: Mapping[str, torch.Tensor], source: str) -> Dict[str, torch.Tensor]:
        """This module's state dict from the official FlatFormer middle encoder's tensors (mmdet3d
        ``middle_encoder.*`` with the prefix stripped: ``block_list.{b}.block.{k}.{attn.attn.in_proj_weight,
        attn.attn.in_proj_bias, attn.attn.out_proj.*, fc1.*, fc2.*, norm1.*, norm2.*}``). Layer ``4 b + k``
        takes block b's layer k; ``in_proj`` (3C, C) splits into q, k (the first 2C rows) and v.

        Raises:
            CheckpointConversionError: another source, or an ``in_proj`` of another width (naming the key).
            KeyError: an official tensor this model needs is absent (the framework names it).
        """
        from pc3d.apis.convert import CheckpointConversionError

        if source != "flatformer":
            raise CheckpointConversionError(f"FlatFormer takes the official FlatFormer (mmdet3d) weights, source "
                                            f"'flatformer', not {source!r}")
        c = self.channels
        state = {}
        for i in range(len(self.layers)):
            off = f"block_list.{i // len(PARTITIONS)}.block.{i % len(PARTITIONS)}."
            ours = f"layers.{i}."
            weight, bias = official[off + "attn.attn.in_proj_weight"], official[off + "attn.attn.in_proj_bias"]
            if tuple(weight.shape) != (3 * c, c) or tuple(bias.shape) != (3 * c,):
                raise CheckpointConversionError(
                    f"'{off}attn.attn.in_proj_weight' / 'in_proj_bias' have shapes {tuple(weight.shape)} / "
                    f"{tuple(bias.shape)}; this FlatFormer (C = {c}) expects {(3 * c, c)} / {(3 * c,)}")
            state[ours + "attn.qk.weight"], state[ours + "attn.v.weight"] = weight[:2 * c], weight[2 * c:]
            state[ours + "attn.qk.bias"], state[ours + "attn.v.bias"] = bias[:2 * c], bias[2 * c:]
            for theirs, mine in (("attn.attn.out_proj", "attn.proj"), ("fc1", "ffn.0"), ("fc2", "ffn.2"),
                                 ("norm1", "norm1"), ("norm2", "norm2")):
                for name in ("weight", "bias"):
                    state[f"{ours}{mine}.{name}"] = official[f"{off}{theirs}.{name}"]
        return state
