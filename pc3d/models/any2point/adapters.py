"""Any-to-3D guided adapter and the bottleneck FFN adapter (the trainable parts inside frozen blocks).

The guided adapter restores 3D locality that a frozen 1D/2D transformer lacks:
- virtual-view branch: in each view, tokens that fall in the same virtual 1D/2D cell (see
  projection.py) are aggregated, by attention restricted to the cell or by mean pooling;
- 3D branch: tokens in the same cell of a coarse 3D voxel grid over the token centres are pooled;
- fusion: per token, the views are weighted by the softmax of their cosine similarity to the 3D
  branch (views that agree with the 3D neighbourhood count more), then added to the 3D feature.

All aggregation is per sample: a cell mask is (B, M, M) and never mixes rows of different samples.
With M ~ 64-256 tokens a dense masked (M x M) form is cheaper than any scatter machinery.
"""
import torch
import torch.nn.functional as F
from torch import nn


def voxel_cells(centres: torch.Tensor, cells_per_axis: int, extent: float = 1.0) -> torch.Tensor:
    """Id of the 3D voxel containing each centre on a ``cells_per_axis``^3 grid over [-extent, extent]^3.

    Args:
        centres: (B, M, 3) float xyz.

    Returns:
        (B, M) int64 voxel id (x-fastest); points outside the cube are clamped to its border cells.
    """
    n = cells_per_axis
    ijk = ((centres / extent + 1.0) * 0.5 * n).floor().long().clamp(0, n - 1)
    return (ijk[..., 2] * n + ijk[..., 1]) * n + ijk[..., 0]


def same_cell_mean(feats: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """Mean of ``feats`` over tokens of the same cell.

    Args:
        feats: (B, M, D) float.
        same: (B, ..., M, M) bool, True where tokens share a cell (diagonal is always True).

    Returns:
        (B, ..., M, D) float.
    """
    w = same.to(feats.dtype)
    w = w / w.sum(-1, keepdim=True)
    extra = same.dim() - 3
    f = feats.view(feats.shape[0], *([1] * extra), *feats.shape[1:])
    return w @ f


class GuidedAdapter(nn.Module):
    """Any-to-3D guided adapter.

    Args:
        dim: C, the frozen model's width.
        hidden: D, the adapter's bottleneck width.
        aggregation: 'attention' (single-head attention restricted to the cell) or 'pool' (cell mean).
        scale: multiplier of the adapter's output (its up-projection starts at zero, so a fresh adapter
            leaves the frozen model's function unchanged).
    """

    def __init__(self, dim: int, hidden: int = 64, aggregation: str = "attention", scale: float = 1.0):
        super().__init__()
        if aggregation not in ("attention", "pool"):
            raise ValueError(f"aggregation must be 'attention' or 'pool', got {aggregation!r}")
        self.aggregation = aggregation
        self.scale = scale
        self.norm = nn.LayerNorm(dim)
        self.down = nn.Linear(dim, hidden)
        if aggregation == "attention":
            self.qk = nn.Linear(hidden, 2 * hidden, bias=False)
        self.up = nn.Linear(hidden, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor, cells: torch.Tensor, voxels: torch.Tensor) -> torch.Tensor:
        """Residual update for the point tokens.

        Args:
            x: (B, M, C) float point-token features (prefix tokens such as CLS excluded).
            cells: (B, V, M) int64 virtual cell of each token in each view.
            voxels: (B, M) int64 3D voxel of each token.

        Returns:
            (B, M, C) float update to add to ``x``.
        """
        h = F.gelu(self.down(self.norm(x)))  # (B, M, D)
        same_view = cells.unsqueeze(-1) == cells.unsqueeze(-2)  # (B, V, M, M)
        if self.aggregation == "attention":
            q, k = self.qk(h).chunk(2, dim=-1)
            logits = (q @ k.transpose(-1, -2)) * h.shape[-1] ** -0.5  # (B, M, M), shared by all views
            logits = logits.unsqueeze(1).masked_fill(~same_view, float("-inf"))
            views = logits.softmax(-1) @ h.unsqueeze(1)  # (B, V, M, D)
        else:
            views = same_cell_mean(h, same_view)
        local3d = same_cell_mean(h, voxels.unsqueeze(-1) == voxels.unsqueeze(-2))  # (B, M, D)
        sim = F.cosine_similarity(views, local3d.unsqueeze(1), dim=-1)  # (B, V, M)
        fused = (sim.softmax(dim=1).unsqueeze(-1) * views).sum(1) + local3d
        return self.scale * self.up(fused)


class BottleneckAdapter(nn.Module):
    """down -> GELU -> up bottleneck placed after the frozen FFN; zero-initialised up-projection.

    Args:
        dim: C; hidden: the bottleneck width.
    """

    def __init__(self, dim: int, hidden: int = 64, scale: float = 1.0):
        super().__init__()
        self.scale = scale
        self.down = nn.Linear(dim, hidden)
        self.up = nn.Linear(hidden, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C) -> (B, T, C) update to add to ``x``."""
        return self.scale * self.up(F.gelu(self.down(x)))
