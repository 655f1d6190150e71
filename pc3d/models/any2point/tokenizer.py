"""Point tokenizer: farthest point sampling + kNN grouping + a small PointNet -> tokens with 3D centres.

This is the first stage of Any2Point: an object point cloud becomes a short sequence of tokens, each
summarising the local patch around a sampled centre, with the centre kept so later stages can place
the token in the frozen model's 1D/2D position grid.
"""
import torch
from torch import nn


def farthest_point_sample(points: torch.Tensor, num_samples: int) -> torch.Tensor:
    """Farthest point sampling, vectorised over the batch.

    Args:
        points: (B, N, 3) float xyz.
        num_samples: M, the number of centres to pick (1 <= M <= N).

    Returns:
        (B, M) int64 indices into N. The first pick is point 0 of each sample (deterministic, so a
        sample's tokens never depend on the random state or on the rest of its batch).
    """
    if points.dim() != 3 or points.shape[-1] != 3:
        raise ValueError(f"points must be (B, N, 3), got {tuple(points.shape)}")
    b, n, _ = points.shape
    if not 1 <= num_samples <= n:
        raise ValueError(f"num_samples must be in [1, N={n}], got {num_samples}")
    idx = torch.zeros(b, num_samples, dtype=torch.long, device=points.device)
    # Squared distance of every point to the nearest centre picked so far.
    min_d2 = torch.full((b, n), float("inf"), dtype=points.dtype, device=points.device)
    farthest = torch.zeros(b, dtype=torch.long, device=points.device)
    batch = torch.arange(b, device=points.device)
    for i in range(num_samples):
        idx[:, i] = farthest
        centre = points[batch, farthest].unsqueeze(1)  # (B, 1, 3)
        d2 = ((points - centre) ** 2).sum(-1)
        min_d2 = torch.minimum(min_d2, d2)
        farthest = min_d2.argmax(-1)
    return idx


def knn_group(points: torch.Tensor, centres: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k nearest points to every centre.

    Args:
        points: (B, N, 3) float xyz.
        centres: (B, M, 3) float xyz.
        k: neighbours per centre (1 <= k <= N).

    Returns:
        (B, M, k) int64 indices into N, nearest first.
    """
    n = points.shape[1]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, N={n}], got {k}")
    d2 = torch.cdist(centres, points)  # (B, M, N)
    return d2.topk(k, dim=-1, largest=False).indices


class PointTokenizer(nn.Module):
    """FPS + kNN + mini-PointNet, in the style of Point-BERT/Point-MAE patch embedding.

    Args:
        embed_dim: C, the width of the frozen transformer the tokens feed.
        num_tokens: M, centres sampled by FPS.
        group_size: k, points per local group.
        hidden: width of the shared point MLP.
    """

    def __init__(self, embed_dim: int, num_tokens: int = 64, group_size: int = 32, hidden: int = 128):
        super().__init__()
        self.num_tokens = num_tokens
        self.group_size = group_size
        self.first = nn.Sequential(nn.Linear(3, hidden // 2), nn.GELU(), nn.Linear(hidden // 2, hidden))
        # The second MLP sees each point's feature next to its group's max: local + patch context.
        self.second = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        # Widening to the frozen model's width happens after the max-pool, on M rows instead of M * k.
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, embed_dim))

    def forward(self, points: torch.Tensor):
        """Tokenize a batch of object point clouds.

        Args:
            points: (B, N, 3) float xyz, normalised to the unit sphere.

        Returns:
            tokens: (B, M, C) float token features.
            centres: (B, M, 3) float xyz of each token's centre.
        """
        if points.dim() != 3 or points.shape[-1] < 3:
            raise ValueError(f"points must be (B, N, >=3), got {tuple(points.shape)}")
        xyz = points[..., :3].contiguous()
        b = xyz.shape[0]
        batch = torch.arange(b, device=xyz.device)[:, None]
        centre_idx = farthest_point_sample(xyz, self.num_tokens)
        centres = xyz[batch, centre_idx]  # (B, M, 3)
        group_idx = knn_group(xyz, centres, self.group_size)  # (B, M, k)
        # Relative coordinates make the patch descriptor translation invariant.
        local = xyz[batch[..., None], group_idx] - centres.unsqueeze(2)  # (B, M, k, 3)
        f = self.first(local)  # (B, M, k, H)
        pooled = f.max(dim=2, keepdim=True).values.expand_as(f)
        f = self.second(torch.cat([f, pooled], dim=-1)).max(dim=2).values  # (B, M, H)
        return self.out(f), centres
