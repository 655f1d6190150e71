"""Plain-PyTorch references of pc3d.ops.voxelize_hard / voxelize_dynamic (tests only).

Independent of the kernels' algorithm: voxels come from ``torch.unique`` on linear keys, first-seen
order from a scatter-amin of point indices, the per-voxel point slots from a stable argsort. The
quantisation is the documented one, in float32: ``c = floor((p - min) / size)``, kept when
``0 <= c < round((max - min) / size)`` on every axis and the coordinate is finite.
"""
import math
from typing import Optional, Sequence, Tuple

import torch


def grid_dims(voxel_size: Sequence[float], pc_range: Sequence[float]) -> Tuple[int, int, int]:
    """(W, H, D) = round((max - min) / size) along x, y, z."""
    return tuple(int(math.floor((pc_range[d + 3] - pc_range[d]) / voxel_size[d] + 0.5)) for d in range(3))


def point_keys(points: torch.Tensor, voxel_size, pc_range, batch_idx: Optional[torch.Tensor] = None):
    """-> (ok (N,) bool, coords (N, 4) int64 (b, z, y, x) (garbage where not ok), key (N,) int64, dims)."""
    w, h, d = grid_dims(voxel_size, pc_range)
    lo = torch.tensor(pc_range[:3], dtype=torch.float32)
    size = torch.tensor(voxel_size, dtype=torch.float32)
    c = torch.floor((points[:, :3].float() - lo) / size)  # NaN/inf stay NaN/inf and fail below
    dims = torch.tensor([w, h, d], dtype=torch.float32)
    ok = ((c >= 0) & (c < dims)).all(dim=1)
    ci = torch.where(ok[:, None], c, torch.zeros_like(c)).long()
    b = torch.zeros(len(points), dtype=torch.long) if batch_idx is None else batch_idx.long()
    key = ((b * d + ci[:, 2]) * h + ci[:, 1]) * w + ci[:, 0]
    coords = torch.stack([b, ci[:, 2], ci[:, 1], ci[:, 0]], dim=1)
    return ok, coords, key, (w, h, d)


def _voxel_order(key: torch.Tensor, ok: torch.Tensor, coords: torch.Tensor):
    """Unique voxels of the kept points by (sample, first point index).

    Returns (vox_of_point (N,) long, -1 when dropped; ranked coords (V, 4) long; rank inside the sample (V,))."""
    n = len(key)
    idx = torch.arange(n)[ok]
    uniq, inv = torch.unique(key[ok], return_inverse=True)
    first = torch.full((len(uniq),), n, dtype=torch.long).scatter_reduce(0, inv, idx, reduce="amin")
    vcoords = coords[first]
    order = torch.argsort(vcoords[:, 0] * (n + 1) + first, stable=True)
    pos = torch.empty_like(order)
    pos[order] = torch.arange(len(order))
    vox_of_point = torch.full((n,), -1, dtype=torch.long)
    vox_of_point[idx] = pos[inv]
    sorted_b = vcoords[order, 0]
    start = torch.searchsorted(sorted_b, sorted_b, right=False)
    rank = torch.arange(len(order)) - start
    return vox_of_point, vcoords[order], rank


def voxelize_hard_ref(points, voxel_size, pc_range, max_points_per_voxel, max_voxels, batch_idx=None):
    """Reference of voxelize_hard: (voxels (V, P, C) float32, coords (V, 4) int32, num_points (V,) int32)."""
    ok, coords, key, _ = point_keys(points, voxel_size, pc_range, batch_idx)
    vox, vcoords, rank = _voxel_order(key, ok, coords)
    keep_voxel = rank < max_voxels
    new_id = torch.cumsum(keep_voxel.long(), 0) - 1
    pv = torch.full_like(vox, -1)
    hit = torch.nonzero(vox >= 0).flatten()
    pv[hit] = torch.where(keep_voxel[vox[hit]], new_id[vox[hit]], -1)
    nv = int(keep_voxel.sum())
    p, c = max_points_per_voxel, points.shape[1]
    voxels = torch.zeros((nv, p, c), dtype=torch.float32)
    num = torch.zeros(nv, dtype=torch.long)
    kept = torch.nonzero(pv >= 0).flatten()
    if len(kept):
        order = torch.argsort(pv[kept], stable=True)  # stable: input order inside a voxel
        pts_sorted = kept[order]
        v_sorted = pv[pts_sorted]
        starts = torch.searchsorted(v_sorted, v_sorted)
        slot = torch.arange(len(v_sorted)) - starts
        fits = slot < p
        voxels[v_sorted[fits], slot[fits]] = points[pts_sorted[fits]].float()
        num = torch.bincount(v_sorted, minlength=nv).clamp(max=p)
    return voxels, vcoords[keep_voxel].int(), num.int()


def voxelize_dynamic_ref(points, voxel_size, pc_range, batch_idx=None):
    """Reference of voxelize_dynamic: (point_coords (N, 4) int32, coords (V, 4) int32, point2voxel (N,) int64)."""
    ok, coords, key, _ = point_keys(points, voxel_size, pc_range, batch_idx)
    vox, vcoords, _ = _voxel_order(key, ok, coords)
    point_coords = torch.where(ok[:, None], coords, torch.full_like(coords, -1))
    return point_coords.int(), vcoords.int(), vox


def scatter_ref(feats: torch.Tensor, point2voxel: torch.Tensor, num_voxels: int, reduce: str) -> torch.Tensor:
    """Per-voxel loop reference of scatter_points; empty voxels give 0."""
    out = torch.zeros((num_voxels, feats.shape[1]), dtype=feats.dtype)
    for v in range(num_voxels):
        rows = feats[point2voxel == v]
        if len(rows):
            out[v] = {"mean": rows.mean(0), "max": rows.max(0).values, "sum": rows.sum(0)}[reduce]
    return out
