"""The Any-to-3D guided adapter and the bottleneck FFN adapter, as published (the trainable parts in frozen blocks).

Per frozen block, after its FFN, the point tokens x (B, M, C) get

- a 3D branch: tokens in the same cubic voxel (side ``voxel_size`` from each sample's minimum corner) are
  pooled (max + mean), then BatchNorm + GELU: ``x3d``;
- one branch per virtual view v: a small attention restricted to the tokens sharing v's virtual cell
  (:class:`CellAttention`, shared by all blocks) with its residual, then the cell mean, BatchNorm + GELU:
  ``x2d_v``; the cells are the projection's grid squares (projection.py), so this is local grouping by
  the frozen model's own position prior;
- the views weighted by their agreement with the 3D branch, ``w_v = (cos(x2d_v, x3d) + 1) / 2`` normalised
  over the views: ``x + scale * sum_v w_v x2d_v``.

The bottleneck adapter (down -> QuickGELU -> up) takes the FFN branch f and the block adds
``f + scale * adapter(f)``.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn


def voxel_clusters(centres: torch.Tensor, voxel_size: float) -> Tuple[torch.Tensor, int]:
    """Cubic voxels of side ``voxel_size`` anchored at each sample's minimum corner.

    Args:
        centres: (B, M, 3) float xyz.
        voxel_size: side of a voxel (same unit as ``centres``).

    Returns:
        ids: (B, M) int64 voxel of each token in [0, U), distinct across samples (two tokens share an id
        only when they belong to the same sample and voxel); U: number of occupied voxels in the batch.
    """
    if voxel_size <= 0:
        raise ValueError(f"voxel_size must be > 0, got {voxel_size}")
    b, m, _ = centres.shape
    ijk = ((centres - centres.amin(dim=1, keepdim=True)) / voxel_size).floor().long()  # (B, M, 3)
    batch = torch.arange(b, device=centres.device).view(b, 1, 1).expand(b, m, 1)
    keys = torch.cat([batch, ijk], dim=-1).reshape(-1, 4)
    uniq, inverse = torch.unique(keys, dim=0, return_inverse=True)
    return inverse.view(b, m), uniq.shape[0]


def segment_mean(feats: torch.Tensor, ids: torch.Tensor, num: int) -> torch.Tensor:
    """Mean of the rows of ``feats`` (K, C) per id (K,) in [0, num) -> (num, C); ids without rows give 0."""
    out = feats.new_zeros(num, feats.shape[-1]).index_add_(0, ids, feats)
    count = torch.bincount(ids, minlength=num).clamp_min(1).to(feats.dtype)
    return out / count.unsqueeze(-1)


def segment_max(feats: torch.Tensor, ids: torch.Tensor, num: int) -> torch.Tensor:
    """Max of the rows of ``feats`` (K, C) per id (K,) in [0, num) -> (num, C); ids without rows give 0."""
    index = ids.unsqueeze(-1).expand_as(feats)
    return feats.new_zeros(num, feats.shape[-1]).scatter_reduce(0, index, feats, "amax", include_self=False)


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x) (the bottleneck adapter's activation)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class BottleneckAdapter(nn.Module):
    """down -> QuickGELU -> dropout -> up on the frozen FFN's branch output.

    Weights are Xavier-uniform and biases normal with std 1e-6 as published (no zero initialisation: the block
    changes from the first step, scaled by the encoder's ``adapter_scale``).

    Args:
        dim: C; hidden: D, the bottleneck width; dropout: after the activation.
    """

    def __init__(self, dim: int, hidden: int = 8, dropout: float = 0.1):
        super().__init__()
        self.down = nn.Linear(dim, hidden)
        self.act = QuickGELU()
        self.drop = nn.Dropout(dropout)
        self.up = nn.Linear(hidden, dim)
        for lin in (self.down, self.up):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.normal_(lin.bias, std=1e-6)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """f: (B, T, C) FFN branch -> (B, T, C) adapter output (not added to ``f``)."""
        return self.up(self.drop(self.act(self.down(f))))


class CellAttention(nn.Module):
    """Multi-head attention in a narrow width, restricted to tokens of the same virtual cell.

    As published: qkv projects C -> 3 * ``mid_dim`` (``num_heads`` heads of ``mid_dim / num_heads``), the
    logits are scaled by ``mid_dim ** -0.5`` and pairs in different cells get -1e5 added; ``proj`` maps back
    to C. A token always shares its own cell, so no row is fully masked.

    Args:
        dim: C; mid_dim: the attention width (published 12); num_heads: published 6; qkv_bias: published True.
    """

    def __init__(self, dim: int, mid_dim: int = 12, num_heads: int = 6, qkv_bias: bool = True):
        super().__init__()
        if mid_dim % num_heads:
            raise ValueError(f"mid_dim ({mid_dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.mid_dim = mid_dim
        self.qkv = nn.Linear(dim, 3 * mid_dim, bias=qkv_bias)
        self.proj = nn.Linear(mid_dim, dim)

    def forward(self, x: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        """x: (B, M, C) float, same: (B, M, M) bool (True where two tokens share a cell) -> (B, M, C)."""
        b, m, _ = x.shape
        q, k, v = self.qkv(x).view(b, m, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)  # (B, H, M, d) each
        logits = (q @ k.transpose(-1, -2)) * self.mid_dim ** -0.5
        logits = logits + (~same).unsqueeze(1).to(logits.dtype) * -1e5
        out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(b, m, self.mid_dim)
        return self.proj(out)


class GuidedAdapter(nn.Module):
    """Any-to-3D guided adapter of one frozen block (its own BatchNorms; the cell attentions are shared).

    Args:
        dim: C, the frozen model's width.
        num_views: V.
        scale: multiplier of the fused update (published 0.7 for the 2D model, 0.3 for the 1D one).
        view_pool: 'mean' (published default) or 'maxmean' (max + mean) inside a virtual cell.
    """

    def __init__(self, dim: int, num_views: int = 6, scale: float = 0.7, view_pool: str = "mean"):
        super().__init__()
        if view_pool not in ("mean", "maxmean"):
            raise ValueError(f"view_pool must be 'mean' or 'maxmean', got {view_pool!r}")
        self.scale = scale
        self.view_pool = view_pool
        self.out_3d = nn.Sequential(nn.BatchNorm1d(dim), nn.GELU())
        self.out_views = nn.ModuleList(nn.Sequential(nn.BatchNorm1d(dim), nn.GELU()) for _ in range(num_views))

    def forward(self, x: torch.Tensor, cells: torch.Tensor, num_cells: int, voxels: torch.Tensor, num_voxels: int,
                cell_attention: nn.ModuleList, cell_norm: nn.ModuleList) -> torch.Tensor:
        """Update of the point tokens.

        Args:
            x: (B, M, C) float point-token features (CLS excluded).
            cells: (B, V, M) int64 virtual cell of each token per view, in [0, num_cells).
            num_cells: cells per sample and view (n^2 in 2D, n in 1D).
            voxels: (B, M) int64 batch-wide voxel ids in [0, num_voxels) (:func:`voxel_clusters`).
            cell_attention, cell_norm: V :class:`CellAttention` and V LayerNorm, one per view.

        Returns:
            (B, M, C) float ``scale * sum_v w_v x2d_v`` to add to ``x``.

        The BatchNorms see one row per occupied voxel (3D) and one row per cell of every sample, empty
        cells included as zero rows (the published pooling fills the whole grid), in training mode.
        """
        b, m, c = x.shape
        flat = x.reshape(b * m, c)
        vox = voxels.reshape(-1)
        pooled = segment_max(flat, vox, num_voxels) + segment_mean(flat, vox, num_voxels)
        x3d = self.out_3d(pooled)[vox].view(b, m, c)
        batch_offset = (torch.arange(b, device=x.device) * num_cells).view(b, 1)
        views = []
        for v, out in enumerate(self.out_views):
            cv = cells[:, v]  # (B, M)
            h = x + cell_attention[v](cell_norm[v](x), cv.unsqueeze(-1) == cv.unsqueeze(-2))
            ids = (cv + batch_offset).reshape(-1)
            hf = h.reshape(b * m, c)
            grid = segment_mean(hf, ids, b * num_cells)
            if self.view_pool == "maxmean":
                grid = grid + segment_max(hf, ids, b * num_cells)
            views.append(out(grid)[ids].view(b, m, c))
        views = torch.stack(views, dim=1)  # (B, V, M, C)
        w = (F.cosine_similarity(views, x3d.unsqueeze(1), dim=-1) + 1.0) / 2.0  # (B, V, M)
        w = w / w.sum(dim=1, keepdim=True).clamp_min(1e-12)
        return self.scale * (w.unsqueeze(-1) * views).sum(dim=1)
