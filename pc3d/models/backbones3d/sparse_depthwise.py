"""Submanifold sparse convolutions by gathering neighbours (no spconv): depthwise and full.

A neighbour table ``(V, K)`` maps every voxel and kernel offset to the row of the voxel at
``coords + offset`` (or to the zero row ``V`` when that cell is empty), found by binary search in the
sorted linear cell keys. Both convs start from the centre tap (every voxel is its own centre neighbour)
and add, per other offset k, only the voxels that have a neighbour there: the depthwise conv
``weight[k] * feats[nbr]`` per channel, the full conv ``feats[nbr] @ weight[k]`` (spconv's gather-GEMM-scatter).
LiDAR voxels lie on surfaces, so most of a 3x3x3 neighbourhood is empty: skipping the empty cells costs
about a third of gathering all K rows (``tools/benchmark.py --suite sparseconv``). Pure PyTorch, so both run on
CPU and CUDA, have autograd, and are unaffected by spconv's CPU-backward bug.
"""
from typing import Sequence

import torch
from torch import nn


def kernel_offsets(kernel_size: Sequence[int], device=None) -> torch.Tensor:
    """(K, 3) int64 (dz, dy, dx) offsets of a centred kernel of size (kz, ky, kx) (odd sizes)."""
    if len(kernel_size) != 3:
        raise ValueError(f"kernel_size must be (kz, ky, kx), got {tuple(kernel_size)}")
    if any(k % 2 == 0 or k < 1 for k in kernel_size):
        raise ValueError(f"kernel_size must be odd and positive, got {tuple(kernel_size)}")
    ranges = [torch.arange(-(k // 2), k // 2 + 1, device=device) for k in kernel_size]
    return torch.stack(torch.meshgrid(*ranges, indexing="ij"), dim=-1).reshape(-1, 3)


def neighbor_table(coords: torch.Tensor, spatial_shape, offsets: torch.Tensor) -> torch.Tensor:
    """Neighbour rows of each voxel.

    Args:
        coords: (V, 4) int32 (b, z, y, x), each cell at most once.
        spatial_shape: (D, H, W).
        offsets: (K, 3) int64 (dz, dy, dx).

    Returns:
        (V, K) int64 row of the neighbour at ``coords + offset``, or V where that cell is empty or outside.
    """
    d, h, w = spatial_shape
    c = coords.long()
    num = c.shape[0]
    key = ((c[:, 0] * d + c[:, 1]) * h + c[:, 2]) * w + c[:, 3]
    sorted_key, perm = torch.sort(key)
    n = c[:, None, 1:] + offsets[None].to(c.device)  # (V, K, 3)
    inside = ((n >= 0) & (n < torch.tensor([d, h, w], device=c.device))).all(dim=-1)
    nkey = ((c[:, None, 0] * d + n[..., 0]) * h + n[..., 1]) * w + n[..., 2]
    pos = torch.searchsorted(sorted_key, nkey).clamp(max=max(num - 1, 0))
    hit = inside & (sorted_key[pos] == nkey) if num else inside
    return torch.where(hit, perm[pos], torch.full_like(pos, num))


def _taps(table: torch.Tensor):
    """Per kernel offset other than the centre: (k, rows (N_k,) voxels with a neighbour at offset k, their
    neighbours (N_k,)). The centre offset (index K // 2 of a centred odd kernel) is each voxel itself."""
    num, centre = table.shape[0], table.shape[1] // 2
    for k in range(table.shape[1]):
        if k == centre:
            continue
        rows = (table[:, k] < num).nonzero().squeeze(1)
        if rows.numel():
            yield k, rows, table[rows, k]


def neighbor_tables(coords: torch.Tensor, spatial_shape, convs) -> list:
    """One :func:`neighbor_table` per conv of ``convs`` (each with ``kernel_size`` and ``offsets``); convs with
    the same kernel share one table, looked up once."""
    by_kernel = {}
    for conv in convs:
        if conv.kernel_size not in by_kernel:
            by_kernel[conv.kernel_size] = neighbor_table(coords, spatial_shape, conv.offsets)
    return [by_kernel[conv.kernel_size] for conv in convs]


class DepthwiseSubmConv(nn.Module):
    """Depthwise submanifold sparse convolution: (V, C) -> (V, C) on the same voxels.

    Args:
        channels: C (one filter per channel).
        kernel_size: (kz, ky, kx), odd sizes.
        bias: add a learned per-channel bias (ScatterFormer's cross-window convs have none).

    ``weight`` is (K, C) with the taps in z-major (kz, ky, kx) order, i.e. a (kz, ky, kx, C) kernel flattened.
    """

    def __init__(self, channels: int, kernel_size: Sequence[int], bias: bool = True):
        super().__init__()
        self.kernel_size = tuple(int(k) for k in kernel_size)
        self.register_buffer("offsets", kernel_offsets(self.kernel_size), persistent=False)
        k = self.offsets.shape[0]
        self.weight = nn.Parameter(torch.randn(k, channels) / k ** 0.5)
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def forward(self, feats: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """feats (V, C) float32, table (V, K) from :func:`neighbor_table` with this kernel's offsets."""
        out = feats * self.weight[table.shape[1] // 2]
        if self.bias is not None:
            out = out + self.bias
        for k, rows, nbrs in _taps(table):
            out.index_add_(0, rows, feats[nbrs] * self.weight[k])
        return out


class SubmConv(nn.Module):
    """Full submanifold sparse convolution (no bias): (V, C_in) -> (V, C_out) on the same voxels.

    What spconv's ``SubMConv3d(C_in, C_out, kernel_size, padding=k // 2, bias=False)`` computes: a dense
    ``conv3d`` of the zero-filled grid read at the input voxels (tests compare the two). Per offset it gathers
    only the voxels with a neighbour there, so memory and time follow the occupied neighbours, not K x V.

    Args:
        in_channels: C_in.
        out_channels: C_out.
        kernel_size: (kz, ky, kx), odd sizes.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Sequence[int]):
        super().__init__()
        self.kernel_size = tuple(int(k) for k in kernel_size)
        self.register_buffer("offsets", kernel_offsets(self.kernel_size), persistent=False)
        k = self.offsets.shape[0]
        # (K, C_in, C_out), fan-in K * C_in as a dense conv's default init.
        self.weight = nn.Parameter(torch.randn(k, in_channels, out_channels) / (k * in_channels) ** 0.5)

    def forward(self, feats: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """feats (V, C_in) float32, table (V, K) from :func:`neighbor_table` with this kernel's offsets."""
        out = feats @ self.weight[table.shape[1] // 2]
        for k, rows, nbrs in _taps(table):
            out.index_add_(0, rows, feats[nbrs] @ self.weight[k])
        return out
