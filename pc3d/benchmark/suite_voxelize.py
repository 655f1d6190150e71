"""Benchmark suite ``voxelize``: pc3d voxelization vs spconv's PointToVoxel and a torch ``unique`` reference.

Cases, on each real scan of the real-LiDAR folder (``harness.real_lidar_dir``; skipped with a message when
absent) and on a 150k-point synthetic frame:
- hard voxelization, Waymo settings (range [-75.2, -75.2, -2, 75.2, 75.2, 4], voxel 0.1 x 0.1 x 0.15,
  5 points per voxel, 150k voxels) and pillar settings (0.32 x 0.32 x 6, 32 points per voxel):
  ``pc3d.ops.voxelize_hard`` vs ``spconv.pytorch.utils.PointToVoxel`` on CPU (built once, outside the
  timing, as a user would; spconv's CPU path keeps a dense grid of the whole range);
- dynamic voxelization (Waymo settings): ``pc3d.ops.voxelize_dynamic`` vs a ``torch.unique`` reference.
Each case's ``check`` asserts both sides give the same voxels (and points per voxel).
"""
from typing import Iterator

import numpy as np
import torch

from .harness import Case, real_lidar_dir

SUITE = "voxelize"

PC_RANGE = [-75.2, -75.2, -2.0, 75.2, 75.2, 4.0]
SETTINGS = {  # name -> (voxel_size, max_points_per_voxel, max_voxels)
    "waymo": ([0.1, 0.1, 0.15], 5, 150_000),
    "pillar": ([0.32, 0.32, 6.0], 32, 150_000),
}


def synthetic_frame(n: int = 150_000, seed: int = 0) -> torch.Tensor:
    """(n, 5) float32 [x, y, z, intensity, elongation]: a LiDAR-like frame (dense near the sensor,
    60% ground returns, the rest on objects up to 3 m high), a few percent outside the Waymo range."""
    rng = np.random.default_rng(seed)
    r = 1.0 + 84.0 * rng.random(n) ** 2
    theta = rng.uniform(-np.pi, np.pi, n)
    ground = rng.random(n) < 0.6
    z = np.where(ground, -1.8 + 0.05 * rng.standard_normal(n), -1.8 + 3.0 * rng.random(n))
    pts = np.stack([r * np.cos(theta), r * np.sin(theta), z, rng.random(n), rng.random(n)], axis=1)
    return torch.from_numpy(pts.astype(np.float32))


def frames() -> Iterator:
    """(name, (N, 5) float32 points) of every real scan, then the synthetic frame."""
    folder = real_lidar_dir()
    files = sorted(folder.glob("*.bin"))
    if not files:
        print(f"[voxelize] no real LiDAR scans at {folder} (set PC3D_REAL_LIDAR): real-scan cases skipped")
    for f in files:
        yield f.stem, torch.from_numpy(np.fromfile(f, dtype=np.float32).reshape(-1, 5))
    yield "synthetic150k", synthetic_frame()


def _voxel_table(coords_zyx: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
    """(V, 4) int64 rows (z, y, x, count) sorted, for order-free comparison."""
    t = torch.cat([coords_zyx.long(), num.long()[:, None]], dim=1)
    key = ((t[:, 0] * 4096 + t[:, 1]) * 4096 + t[:, 2])
    return t[torch.argsort(key)]


def check_hard(ours, spconv_out) -> None:
    voxels, coords, num = ours
    sv, sc, sn = spconv_out
    if len(coords) != len(sc):
        raise AssertionError(f"pc3d made {len(coords)} voxels, spconv {len(sc)}")
    if not torch.equal(_voxel_table(coords[:, 1:], num), _voxel_table(sc, sn)):
        raise AssertionError("pc3d and spconv disagree on the voxels or their point counts")


def unique_reference(points: torch.Tensor, voxel_size, pc_range):
    """torch ``unique``-based dynamic voxelization: (coords (V, 3) z, y, x, point2voxel (N,) -1 = dropped)."""
    dev = points.device  # also run on the GPU (suite_cuda)
    lo = torch.tensor(pc_range[:3], device=dev)
    size = torch.tensor(voxel_size, device=dev)
    dims = torch.tensor([round((pc_range[d + 3] - pc_range[d]) / voxel_size[d]) for d in range(3)], device=dev)
    c = torch.floor((points[:, :3] - lo) / size)
    ok = ((c >= 0) & (c < dims)).all(1)
    ci = c[ok].long()
    key = (ci[:, 2] * dims[1] + ci[:, 1]) * dims[0] + ci[:, 0]
    uniq, inv = torch.unique(key, return_inverse=True)
    p2v = torch.full((len(points),), -1, dtype=torch.long, device=dev)
    p2v[ok] = inv
    coords = torch.stack([uniq // (dims[0] * dims[1]), uniq // dims[0] % dims[1], uniq % dims[0]], 1)
    return coords, p2v


def check_dynamic(ours, theirs) -> None:
    coords, p2v = theirs
    if len(ours.coords) != len(coords):
        raise AssertionError(f"pc3d made {len(ours.coords)} voxels, the unique reference {len(coords)}")
    if not torch.equal(ours.point2voxel < 0, p2v < 0):
        raise AssertionError("pc3d and the unique reference drop different points")
    kept = p2v >= 0
    ours_cnt = torch.bincount(ours.point2voxel[kept], minlength=len(coords))
    theirs_cnt = torch.bincount(p2v[kept], minlength=len(coords))
    if not torch.equal(_voxel_table(ours.coords[:, 1:], ours_cnt), _voxel_table(coords, theirs_cnt)):
        raise AssertionError("pc3d and the unique reference disagree on the voxels or their points")


def cases() -> Iterator[Case]:
    from pc3d.ops import voxelize_dynamic, voxelize_hard

    try:
        from spconv.pytorch.utils import PointToVoxel
    except ImportError as exc:  # pragma: no cover - spconv is a core dependency
        print(f"[voxelize] spconv unavailable ({exc}): hard-voxelization cases run without a baseline")
        PointToVoxel = None

    for frame, pts in frames():
        for setting, (vsize, max_points, max_voxels) in SETTINGS.items():
            baseline = None
            if PointToVoxel is not None:
                gen = PointToVoxel(vsize, PC_RANGE, pts.shape[1], max_voxels, max_points, device=torch.device("cpu"))
                baseline = (lambda g=gen, p=pts: g(p))
            yield Case(
                suite=SUITE, name=f"hard {setting} {frame} ({len(pts) // 1000}k pts)",
                impl_name="pc3d.voxelize_hard",
                impl=(lambda p=pts, v=vsize, m=max_points, mv=max_voxels: voxelize_hard(p, v, PC_RANGE, m, mv)),
                baseline_name="spconv PointToVoxel" if baseline else None, baseline=baseline,
                check=check_hard if baseline else None,
                extra={"threads": torch.get_num_threads(), "points": len(pts)},
            )
        vsize = SETTINGS["waymo"][0]
        yield Case(
            suite=SUITE, name=f"dynamic waymo {frame} ({len(pts) // 1000}k pts)",
            impl_name="pc3d.voxelize_dynamic",
            impl=(lambda p=pts, v=vsize: voxelize_dynamic(p, v, PC_RANGE)),
            baseline_name="torch.unique reference",
            baseline=(lambda p=pts, v=vsize: unique_reference(p, v, PC_RANGE)),
            check=check_dynamic,
            extra={"threads": torch.get_num_threads(), "points": len(pts)},
        )

