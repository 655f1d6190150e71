"""Building blocks of the sparse-voxel transformers: grouped multi-head attention over slots gathered from a
voxel list, FlatFormer's post-norm attention + FFN layer, and the inverse of DSVT's set partition.

A "grouped" layout is ``(Ng, G)`` slots, each slot naming one voxel row (``indices``); some slots repeat a
voxel to pad a group (``padding_mask`` True). Padded slots are masked as keys, so a duplicate never gets
extra attention weight, and results go back to voxels through ``inverse`` (one real slot per voxel), so
a duplicate never writes twice.
"""
import torch
import torch.nn.functional as F
from torch import nn


class GroupAttention(nn.Module):
    """Multi-head softmax attention inside each group of slots (q.k / sqrt(d)).

    forward(x (Ng, G, C) values, qk (Ng, G, C) queries/keys (features + position), padding_mask (Ng, G)
    bool True = key to ignore) -> (Ng, G, C). Every group must hold at least one unmasked slot.
    """

    def __init__(self, channels: int, num_heads: int):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"channels ({channels}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.qk = nn.Linear(channels, 2 * channels)
        self.v = nn.Linear(channels, channels)
        self.proj = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, qk: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        ng, g, c = x.shape
        h = self.num_heads
        q, k = self.qk(qk).view(ng, g, 2, h, c // h).permute(2, 0, 3, 1, 4)  # each (Ng, h, G, c/h)
        v = self.v(x).view(ng, g, h, c // h).transpose(1, 2)
        attend = ~padding_mask[:, None, None, :]  # (Ng, 1, 1, G) True = may attend
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attend)
        return self.proj(out.transpose(1, 2).reshape(ng, g, c))


class PostNormAttentionLayer(nn.Module):
    """``x = LN(x + Attn(x + pos)); x = LN(x + FFN(x))`` with the attention over grouped slots.

    Args:
        channels: C.
        num_heads: attention heads.
        ffn_channels: hidden width of the GELU FFN.
    """

    def __init__(self, channels: int, num_heads: int, ffn_channels: int):
        super().__init__()
        self.attn = GroupAttention(channels, num_heads)
        self.norm1 = nn.LayerNorm(channels)
        self.ffn = nn.Sequential(nn.Linear(channels, ffn_channels), nn.GELU(), nn.Linear(ffn_channels, channels))
        self.norm2 = nn.LayerNorm(channels)

    def forward(self, feats: torch.Tensor, pos: torch.Tensor, indices: torch.Tensor, inverse: torch.Tensor,
                padding_mask: torch.Tensor) -> torch.Tensor:
        """feats (V, C) and pos (V, C) per voxel; indices (Ng, G) int64 voxel per slot; inverse (V,) int64
        flat slot of each voxel's real occurrence; padding_mask (Ng, G) bool. Returns (V, C)."""
        grouped = feats[indices]
        out = self.attn(grouped, grouped + pos[indices], padding_mask)
        out = out.reshape(-1, feats.shape[1])[inverse]
        feats = self.norm1(feats + out)
        return self.norm2(feats + self.ffn(feats))


def real_slot_inverse(indices: torch.Tensor, padding_mask: torch.Tensor, num_voxels: int) -> torch.Tensor:
    """(V,) int64 flat slot of each voxel's one unmasked occurrence in ``indices`` (Ns, tau).

    Requires that every voxel appears unmasked exactly once (true of DSVT's rotated sets)."""
    flat_idx, real = indices.reshape(-1), ~padding_mask.reshape(-1)
    slots = torch.arange(flat_idx.numel(), device=indices.device)
    inverse = torch.full((num_voxels,), -1, dtype=torch.int64, device=indices.device)
    inverse[flat_idx[real]] = slots[real]
    return inverse
