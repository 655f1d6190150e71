"""Building blocks shared by the sparse-voxel transformers: grouped multi-head attention over slots
gathered from a voxel list, the post-norm attention + FFN layer of FlatFormer/DSVT (and a pre-norm
variant that starts as the identity), and sinusoidal position encodings.

A "grouped" layout is ``(Ng, G)`` slots, each slot naming one voxel row (``indices``); some slots repeat a
voxel to pad a group (``padding_mask`` True). Padded slots are masked as keys, so a duplicate never gets
extra attention weight, and results go back to voxels through ``inverse`` (one real slot per voxel), so
a duplicate never writes twice.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn


def sinusoidal_position(pos: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """Transformer sin/cos encoding of D-dimensional positions.

    Args:
        pos: (V, D) float32 positions (voxel units), one column per axis.
        dim: output width, at least 2 * D: each axis in turn gets ``q = dim // (2 D)`` frequencies of sin
            followed by the same of cos; the ``dim - 2 D q`` columns left over are zero (for D = 2 and a
            multiple of 4 there are none).

    Returns:
        (V, dim) float32.
    """
    if pos.dim() != 2:
        raise ValueError(f"positions must be (V, D), got shape {tuple(pos.shape)}")
    num_axes = pos.shape[1]
    q = dim // (2 * num_axes)
    if q == 0:
        raise ValueError(f"dim ({dim}) must be at least 2 x the number of axes ({num_axes}) "
                         "for a sin/cos encoding")
    freq = temperature ** (-torch.arange(q, dtype=torch.float32, device=pos.device) / q)
    parts = []
    for axis in range(num_axes):
        angle = pos[:, axis:axis + 1].float() * freq[None, :]
        parts += [angle.sin(), angle.cos()]
    out = torch.cat(parts, dim=1)
    return F.pad(out, (0, dim - out.shape[1]))


# Scaled cosine attention (Swin Transformer V2): the per-head temperature starts at 10 and is capped at 100.
COSINE_INIT_SCALE, COSINE_MAX_SCALE = 10.0, 100.0


class GroupAttention(nn.Module):
    """Multi-head attention inside each group of slots.

    ``cosine=True`` replaces the dot product q.k / sqrt(d) by Swin V2's scaled cosine attention,
    cos(q, k) * tau with a learned per-head tau (starting at 10, capped at 100): the logits stay in
    [-tau, tau] whatever the q/k weights' norms do. Why: with dot-product logits the attention of the
    small-data comparison either stays near uniform (normalised entropy 0.93-0.96 after 12 epochs at a
    1.5e-3 peak rate) or saturates (logits up to 125 at 6e-3), depending on the rate and the seed.
    Measured there (configs/compare/README.md): FlatFormer +0.009 Vehicle AP over three seeds at 3e-3, its
    bad seed still bad, -0.023 at 6e-3; off by default, as in the papers.

    forward(x (Ng, G, C) values, qk (Ng, G, C) queries/keys (features + position), padding_mask (Ng, G)
    bool True = key to ignore) -> (Ng, G, C). Every group must hold at least one unmasked slot.
    """

    def __init__(self, channels: int, num_heads: int, cosine: bool = False):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"channels ({channels}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.qk = nn.Linear(channels, 2 * channels)
        self.v = nn.Linear(channels, channels)
        self.proj = nn.Linear(channels, channels)
        # log tau per head, (h, 1, 1) to broadcast over (Ng, h, G, d); None: dot-product attention.
        self.logit_scale = (nn.Parameter(torch.full((num_heads, 1, 1), math.log(COSINE_INIT_SCALE)))
                            if cosine else None)

    def forward(self, x: torch.Tensor, qk: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        ng, g, c = x.shape
        h = self.num_heads
        q, k = self.qk(qk).view(ng, g, 2, h, c // h).permute(2, 0, 3, 1, 4)  # each (Ng, h, G, c/h)
        v = self.v(x).view(ng, g, h, c // h).transpose(1, 2)
        attend = ~padding_mask[:, None, None, :]  # (Ng, 1, 1, G) True = may attend
        scale = None
        if self.logit_scale is not None:
            tau = self.logit_scale.clamp(max=math.log(COSINE_MAX_SCALE)).exp()
            q, k, scale = F.normalize(q, dim=-1) * tau, F.normalize(k, dim=-1), 1.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attend, scale=scale)
        return self.proj(out.transpose(1, 2).reshape(ng, g, c))


class PostNormAttentionLayer(nn.Module):
    """``x = LN(x + Attn(x + pos)); x = LN(x + FFN(x))`` with the attention over grouped slots.

    Args:
        channels: C.
        num_heads: attention heads.
        ffn_channels: hidden width of the GELU FFN.
        cosine: scaled cosine attention instead of dot-product (:class:`GroupAttention`).
    """

    def __init__(self, channels: int, num_heads: int, ffn_channels: int, cosine: bool = False):
        super().__init__()
        self.attn = GroupAttention(channels, num_heads, cosine)
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


class PreNormAttentionLayer(PostNormAttentionLayer):
    """``x = x + Attn(LN(x) + pos); x = x + FFN(LN(x))`` with the attention over grouped slots.

    The same modules as :class:`PostNormAttentionLayer`, applied in pre-norm order. The last linear of
    each branch starts at zero (``zero_init_branches``), so at initialisation the layer is the identity: a
    stack of them passes its input through unchanged and learns only what to add.
    """

    def branch_outputs(self):
        """The linears whose outputs are added to the residual stream."""
        return [self.attn.proj, self.ffn[2]]

    def forward(self, feats: torch.Tensor, pos: torch.Tensor, indices: torch.Tensor, inverse: torch.Tensor,
                padding_mask: torch.Tensor) -> torch.Tensor:
        """Shapes as :meth:`PostNormAttentionLayer.forward`. Returns (V, C)."""
        normed = self.norm1(feats)
        grouped = normed[indices]
        out = self.attn(grouped, grouped + pos[indices], padding_mask)
        feats = feats + out.reshape(-1, feats.shape[1])[inverse]
        return feats + self.ffn(self.norm2(feats))


def attention_layer(channels: int, num_heads: int, ffn_channels: int, identity_init: bool,
                    cosine: bool = False) -> nn.Module:
    """The post-norm layer of the papers, or with ``identity_init`` the pre-norm one that starts as the identity;
    ``cosine``: scaled cosine attention (:class:`GroupAttention`)."""
    cls = PreNormAttentionLayer if identity_init else PostNormAttentionLayer
    return cls(channels, num_heads, ffn_channels, cosine)


def zero_init_branches(linears) -> None:
    """Zero the weights and biases of residual-branch output linears (call after the weight init)."""
    for m in linears:
        nn.init.zeros_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def real_slot_inverse(indices: torch.Tensor, padding_mask: torch.Tensor, num_voxels: int) -> torch.Tensor:
    """(V,) int64 flat slot of each voxel's one unmasked occurrence in ``indices`` (Ns, tau).

    Requires that every voxel appears unmasked exactly once (true of DSVT's rotated sets)."""
    flat_idx, real = indices.reshape(-1), ~padding_mask.reshape(-1)
    slots = torch.arange(flat_idx.numel(), device=indices.device)
    inverse = torch.full((num_voxels,), -1, dtype=torch.int64, device=indices.device)
    inverse[flat_idx[real]] = slots[real]
    return inverse


def init_transformer_weights(module: nn.Module) -> None:
    """Xavier-uniform linear weights, zero biases (stable start for post-norm stacks)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight, gain=1.0 / math.sqrt(2.0) if m.out_features == m.in_features else 1.0)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
