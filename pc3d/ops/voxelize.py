"""Voxelization: points -> voxels (hard, with fixed capacity) or point -> voxel maps (dynamic).

Grid convention (spconv / mmdet3d): ``pc_range = [x_min, y_min, z_min, x_max, y_max, z_max]``,
``voxel_size = [vx, vy, vz]``, grid ``(W, H, D) = round((max - min) / size)`` cells along x, y, z
(spatial shape ``(D, H, W)``). A point is kept when ``0 <= floor((p - min) / size) < grid`` on every
axis, computed in float32; so the min boundary is inclusive and, when the range is a whole number of
voxels, the max boundary is exclusive. Pillars are voxels whose ``vz`` equals ``z_max - z_min`` (D = 1).

Dropped points: outside the grid, or with a NaN/inf x, y or z (treated as out of range, never an
error, because real scans carry invalid returns). Voxels are grouped by sample (ascending sample index)
and, inside a sample, in first-seen order (order of their first point in the input); the points of a
voxel keep their input order. Both ops are deterministic and give the same result on CPU and CUDA.

Bad input raises ``ValueError`` naming the argument: points not float32 ``(N, C>=3)`` (or a non-empty
list of such tensors), ``batch_idx`` not int64 ``(N,)`` on the points' device or negative, a
``batch_idx`` given with a list, ``voxel_size`` not 3 finite values > 0, ``pc_range`` not 6 finite
values with min < max, a grid with < 1 cell along an axis, a grid whose linear voxel index
``((b * D + z) * H + y) * W + x`` would not fit in int64 (the kernels' index type) or whose extent along
an axis exceeds int32 (the coords' type), ``max_points_per_voxel`` / ``max_voxels`` not ints >= 1.
Empty input (or all points dropped) gives empty outputs of the documented shapes.

The outputs carry no gradient (voxelization selects and copies input rows; train the features built
from them instead).
"""
import math
from collections import namedtuple
from typing import List, Optional, Sequence, Tuple, Union

import torch

from ._library import load_library

load_library()

__all__ = ["HardVoxels", "DynamicVoxels", "voxelize_hard", "voxelize_dynamic", "scatter_points", "grid_shape"]

HardVoxels = namedtuple("HardVoxels", ["voxels", "coords", "num_points"])
HardVoxels.__doc__ = """Result of :func:`voxelize_hard`.

voxels: (V, P, C) float32, the first ``num_points[v]`` rows of voxel v are its points, the rest zeros.
coords: (V, 4) int32 (b, z, y, x). num_points: (V,) int32 in [1, P]."""

DynamicVoxels = namedtuple("DynamicVoxels", ["point_coords", "coords", "point2voxel"])
DynamicVoxels.__doc__ = """Result of :func:`voxelize_dynamic`.

point_coords: (N, 4) int32 (b, z, y, x) of each point's voxel, all -1 for dropped points.
coords: (V, 4) int32 (b, z, y, x) unique voxels, by sample then first seen.
point2voxel: (N,) int64 row of ``coords`` holding each point, -1 for dropped points."""

_INT64_INDEX_LIMIT = 1 << 62  # keys and a sentinel above them must fit in int64
_INT32_MAX = (1 << 31) - 1

PointsArg = Union[torch.Tensor, Sequence[torch.Tensor]]


def _floats(value, n: int, name: str) -> List[float]:
    try:
        vals = [float(v) for v in (value.tolist() if isinstance(value, torch.Tensor) else value)]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of {n} numbers, got {value!r}") from None
    if len(vals) != n:
        raise ValueError(f"{name} must have {n} values, got {len(vals)}: {vals}")
    if not all(math.isfinite(v) for v in vals):
        raise ValueError(f"{name} must be finite, got {vals}")
    return vals


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


def grid_shape(voxel_size: Sequence[float], pc_range: Sequence[float], batch_size: int = 1) -> Tuple[int, int, int]:
    """Validated grid ``(W, H, D)`` (cells along x, y, z) of ``voxel_size`` over ``pc_range``.

    Raises:
        ValueError: bad ``voxel_size`` / ``pc_range``, fewer than 1 cell along an axis, an extent above
            2^31 - 1 cells, or ``W * H * D * batch_size`` beyond the kernels' int64 linear index.
    """
    size = _floats(voxel_size, 3, "voxel_size")
    rng = _floats(pc_range, 6, "pc_range")
    if any(s <= 0 for s in size):
        raise ValueError(f"voxel_size must be > 0 on every axis, got {size}")
    if any(rng[d] >= rng[d + 3] for d in range(3)):
        raise ValueError(f"pc_range must have min < max on every axis ([x0, y0, z0, x1, y1, z1]), got {rng}")
    dims = []
    for d, axis in enumerate("xyz"):
        cells = (rng[d + 3] - rng[d]) / size[d]
        if not math.isfinite(cells) or cells >= _INT32_MAX:
            raise ValueError(f"voxel grid has {cells:.4g} cells along {axis} (range {rng[d + 3] - rng[d]:g} / "
                             f"voxel_size {size[d]:g}): more than the int32 coords can index (2^31 - 1)")
        n = int(math.floor(cells + 0.5))
        if n < 1:
            raise ValueError(f"voxel_size[{d}] = {size[d]:g} is more than twice the pc_range extent along {axis} "
                             f"({rng[d + 3] - rng[d]:g}): the grid would have 0 cells")
        dims.append(n)
    total = dims[0] * dims[1] * dims[2] * max(1, batch_size)
    if total > _INT64_INDEX_LIMIT:
        raise ValueError(f"voxel grid W x H x D x batch = {dims[0]} x {dims[1]} x {dims[2]} x {batch_size} = "
                         f"{total} cells overflows the int64 linear voxel index (limit 2^62); use larger voxels")
    return dims[0], dims[1], dims[2]


def _check_points(points: torch.Tensor, name: str) -> None:
    if not isinstance(points, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor (N, C) float32 or a list of them, got {type(points).__name__}")
    if points.dtype != torch.float32:
        raise ValueError(f"{name} must be float32, got {points.dtype}")
    if points.dim() != 2 or points.shape[1] < 3:
        raise ValueError(f"{name} must be (N, C>=3) [x, y, z, ...], got shape {tuple(points.shape)}")
    if points.shape[0] >= _INT32_MAX:
        raise ValueError(f"{name} has {points.shape[0]} points; the kernels index points with int32 (< 2^31 - 1)")


def _batched(points: PointsArg, batch_idx: Optional[torch.Tensor]) -> Tuple[torch.Tensor, Optional[torch.Tensor], int]:
    """-> (points (N, C) float32, batch_idx (N,) int64 or None, batch_size)."""
    if isinstance(points, (list, tuple)):
        if batch_idx is not None:
            raise ValueError("batch_idx must be None when points is a list of per-sample tensors")
        if len(points) == 0:
            raise ValueError("points is an empty list: pass at least one (N, C) sample (it may have N = 0)")
        for i, p in enumerate(points):
            _check_points(p, f"points[{i}]")
            if p.shape[1] != points[0].shape[1] or p.device != points[0].device:
                raise ValueError(f"points[{i}] is {tuple(p.shape)} on {p.device}, but points[0] is "
                                 f"{tuple(points[0].shape)} on {points[0].device}: samples must share C and device")
        if len(points) == 1:
            return points[0].detach(), None, 1
        counts = torch.tensor([p.shape[0] for p in points], device=points[0].device)
        bidx = torch.repeat_interleave(torch.arange(len(points), device=points[0].device), counts)
        return torch.cat([p.detach() for p in points]), bidx, len(points)
    _check_points(points, "points")
    points = points.detach()
    if batch_idx is None:
        return points, None, 1
    if not isinstance(batch_idx, torch.Tensor):
        raise ValueError(f"batch_idx must be a torch.Tensor (N,) int64 or None, got {type(batch_idx).__name__}")
    if batch_idx.dtype != torch.int64:
        raise ValueError(f"batch_idx must be int64, got {batch_idx.dtype}")
    if batch_idx.shape != (points.shape[0],):
        raise ValueError(f"batch_idx must be (N,) = ({points.shape[0]},) like points, got {tuple(batch_idx.shape)}")
    if batch_idx.device != points.device:
        raise ValueError(f"batch_idx is on {batch_idx.device} but points are on {points.device}")
    if batch_idx.numel() == 0:
        return points, None, 1
    lo, hi = torch.aminmax(batch_idx)
    lo, hi = int(lo), int(hi)
    if lo < 0:
        raise ValueError(f"batch_idx must be >= 0, got min {lo}")
    return points, batch_idx.detach(), hi + 1


def voxelize_hard(points: PointsArg, voxel_size: Sequence[float], pc_range: Sequence[float],
                  max_points_per_voxel: int, max_voxels: int, batch_idx: Optional[torch.Tensor] = None) -> HardVoxels:
    """Hard voxelization: at most ``max_points_per_voxel`` points in each of at most ``max_voxels`` voxels per sample.

    Args:
        points: (N, C) float32 [x, y, z, ...] (e.g. C = 5: x, y, z, intensity, elongation), or a list of
            per-sample (N_b, C) float32 tensors (sample b = list position).
        voxel_size: [vx, vy, vz] metres. pc_range: [x_min, y_min, z_min, x_max, y_max, z_max] metres.
        max_points_per_voxel: P; later points of a full voxel are dropped (input order decides).
        max_voxels: per sample; voxels first seen after the first ``max_voxels`` of their sample are dropped.
        batch_idx: (N,) int64 sample index of each point (any order), or None for a single sample.

    Returns:
        HardVoxels(voxels (V, P, C) float32 zero-padded, coords (V, 4) int32 (b, z, y, x),
        num_points (V,) int32), voxels by sample then first-seen.

    Raises:
        ValueError: see the module docstring; NaN/inf points are dropped, not rejected.
    """
    pts, bidx, batch_size = _batched(points, batch_idx)
    dims = grid_shape(voxel_size, pc_range, batch_size)
    p = _positive_int(max_points_per_voxel, "max_points_per_voxel")
    m = _positive_int(max_voxels, "max_voxels")
    out = torch.ops.pc3d.voxelize_hard(pts, bidx, _floats(voxel_size, 3, "voxel_size"),
                                       _floats(pc_range, 6, "pc_range"), list(dims), batch_size, p, m)
    return HardVoxels(*out)


def voxelize_dynamic(points: PointsArg, voxel_size: Sequence[float], pc_range: Sequence[float],
                     batch_idx: Optional[torch.Tensor] = None) -> DynamicVoxels:
    """Dynamic voxelization: every kept point is mapped to its voxel, no capacity limits.

    Args:
        points: (N, C) float32 [x, y, z, ...] or a list of per-sample (N_b, C) float32 tensors.
        voxel_size: [vx, vy, vz]. pc_range: [x_min, y_min, z_min, x_max, y_max, z_max].
        batch_idx: (N,) int64 sample index of each point, or None for a single sample.

    Returns:
        DynamicVoxels(point_coords (N, 4) int32 (b, z, y, x) or -1 rows for dropped points,
        coords (V, 4) int32 unique voxels by sample then first-seen, point2voxel (N,) int64 or -1).
        For a list input N is the total number of points, in list order.

    Raises:
        ValueError: see the module docstring; NaN/inf points are dropped, not rejected.
    """
    pts, bidx, batch_size = _batched(points, batch_idx)
    dims = grid_shape(voxel_size, pc_range, batch_size)
    out = torch.ops.pc3d.voxelize_dynamic(pts, bidx, _floats(voxel_size, 3, "voxel_size"),
                                          _floats(pc_range, 6, "pc_range"), list(dims), batch_size)
    return DynamicVoxels(*out)


_REDUCTIONS = ("mean", "max", "sum")


def scatter_points(feats: torch.Tensor, point2voxel: torch.Tensor, num_voxels: int, reduce: str = "mean") -> torch.Tensor:
    """Reduce per-point features into their voxels with torch-scatter (differentiable w.r.t. ``feats``).

    Args:
        feats: (N, F) floating point per-point features.
        point2voxel: (N,) int64 voxel row of each point in [0, num_voxels), -1 = ignored (dropped point).
        num_voxels: V, rows of the output (``len(coords)`` of :func:`voxelize_dynamic`).
        reduce: 'mean' | 'max' | 'sum'. A voxel with no point gets 0.

    Returns:
        (V, F) tensor of feats' dtype and device.

    Raises:
        ValueError: wrong shapes/dtypes/devices, an unknown reduce, num_voxels < 0, or point2voxel
            values outside [-1, num_voxels).
    """
    if not isinstance(feats, torch.Tensor) or feats.dim() != 2 or not feats.is_floating_point():
        raise ValueError(f"feats must be a floating (N, F) tensor, got "
                         f"{tuple(feats.shape) if isinstance(feats, torch.Tensor) else type(feats).__name__}"
                         f"{' ' + str(feats.dtype) if isinstance(feats, torch.Tensor) else ''}")
    if not isinstance(point2voxel, torch.Tensor) or point2voxel.dtype != torch.int64:
        raise ValueError(f"point2voxel must be an int64 tensor, got "
                         f"{point2voxel.dtype if isinstance(point2voxel, torch.Tensor) else type(point2voxel).__name__}")
    if point2voxel.shape != (feats.shape[0],):
        raise ValueError(f"point2voxel must be (N,) = ({feats.shape[0]},) like feats, got {tuple(point2voxel.shape)}")
    if point2voxel.device != feats.device:
        raise ValueError(f"point2voxel is on {point2voxel.device} but feats are on {feats.device}")
    if isinstance(num_voxels, bool) or not isinstance(num_voxels, int) or num_voxels < 0:
        raise ValueError(f"num_voxels must be an int >= 0, got {num_voxels!r}")
    if reduce not in _REDUCTIONS:
        raise ValueError(f"reduce must be one of {_REDUCTIONS}, got {reduce!r}")
    import torch_scatter  # the design's scatter library (faster than torch's scatter_reduce on CPU)

    if point2voxel.numel() == 0:
        return feats.new_zeros((num_voxels, feats.shape[1]))
    lo, hi = (int(v) for v in torch.aminmax(point2voxel))
    if lo < -1 or hi >= num_voxels:
        raise ValueError(f"point2voxel values must be in [-1, num_voxels={num_voxels}), got [{lo}, {hi}]")
    if lo >= 0:
        return torch_scatter.scatter(feats, point2voxel, dim=0, dim_size=num_voxels, reduce=reduce)
    # Ignored points go to an extra leading row that is cut off: no gather of the kept rows of feats.
    out = torch_scatter.scatter(feats, point2voxel + 1, dim=0, dim_size=num_voxels + 1, reduce=reduce)
    return out[1:]


def _register_fakes() -> None:
    """Shape functions for torch.compile / opcheck: V is data dependent."""

    @torch.library.register_fake("pc3d::voxelize_hard")
    def _hard_fake(points, batch_idx, voxel_size, pc_range, grid_size, batch_size, max_points_per_voxel, max_voxels):
        v = torch.library.get_ctx().new_dynamic_size()
        return (points.new_empty((v, max_points_per_voxel, points.shape[1])),
                points.new_empty((v, 4), dtype=torch.int32), points.new_empty((v,), dtype=torch.int32))

    @torch.library.register_fake("pc3d::voxelize_dynamic")
    def _dynamic_fake(points, batch_idx, voxel_size, pc_range, grid_size, batch_size):
        v = torch.library.get_ctx().new_dynamic_size()
        return (points.new_empty((points.shape[0], 4), dtype=torch.int32),
                points.new_empty((v, 4), dtype=torch.int32), points.new_empty((points.shape[0],), dtype=torch.int64))


_register_fakes()
