"""Window partitioners and scattered linear attention against straightforward PyTorch baselines.

Inputs: every real scan of the real-LiDAR folder (``harness.real_lidar_dir``; float32 rows x, y, z, intensity, ring) and a
synthetic 150k-point frame, pillar-voxelized at 0.32 m over [-74.88, 74.88]^2 (a 468 x 468 grid, Waymo's).
Cases per input:
  * ``flat``: FlatFormer's four partitions of a block (x, x-shift, y, y-shift), window 13x13, G = 144, with the
    official last-group rule.
  * ``dsvt``: DSVT rotated sets, window 12x12, set size 36, both orders.
  * ``sla``:  scattered linear attention forward + backward, C = 128 as 4 heads x 32, window 12.
Baselines are measured in the same run: argsort-based keys and group cutting, per-window rank via sort
and set gather, and ``index_add_`` attention (which materialises the (N, h, d, d) outer products).
"""
from typing import Iterator, List, Tuple

import numpy as np
import torch

from pc3d.benchmark.harness import Case, real_lidar_dir

SUITE = "partition"
VOXEL = 0.32
HALF_RANGE = 74.88
GRID = int(round(2 * HALF_RANGE / VOXEL))  # 468


def pillar_coords(points: torch.Tensor) -> torch.Tensor:
    """(V, 4) int32 [b=0, z=0, y, x] unique pillars of ``points`` (N, >=2) in first-seen order."""
    xy = torch.floor((points[:, :2] + HALF_RANGE) / VOXEL).long()
    xy = xy[((xy >= 0) & (xy < GRID)).all(1)]
    lin = xy[:, 1] * GRID + xy[:, 0]
    uniq, inv = torch.unique(lin, return_inverse=True)
    first = torch.full((uniq.numel(),), lin.numel(), dtype=torch.long).scatter_reduce_(
        0, inv, torch.arange(lin.numel()), reduce="amin")
    lin = uniq[torch.argsort(first)]
    zeros = torch.zeros_like(lin)
    return torch.stack([zeros, zeros, lin // GRID, lin % GRID], 1).int()


def synthetic_frame(n: int = 150_000, seed: int = 0) -> torch.Tensor:
    """(n, 5) float32 [x, y, z, intensity, ring]: ground rings denser near the sensor plus box clusters."""
    g = torch.Generator().manual_seed(seed)
    n_ground = n * 2 // 3
    r = 2.0 + 70.0 * torch.rand(n_ground, generator=g) ** 2
    a = 2 * torch.pi * torch.rand(n_ground, generator=g)
    ground = torch.stack([r * torch.cos(a), r * torch.sin(a), -1.8 + 0.05 * torch.randn(n_ground, generator=g)], 1)
    n_obj = n - n_ground
    centres = (torch.rand(200, 2, generator=g) - 0.5) * 2 * 70.0
    which = torch.randint(0, 200, (n_obj,), generator=g)
    obj = torch.cat([centres[which] + torch.randn(n_obj, 2, generator=g) * 1.5,
                     torch.rand(n_obj, 1, generator=g) * 2 - 1.5], 1)
    xyz = torch.cat([ground, obj])
    return torch.cat([xyz, torch.rand(n, 1, generator=g), torch.randint(0, 64, (n, 1), generator=g).float()], 1)


def inputs() -> List[Tuple[str, torch.Tensor]]:
    """[(name, coords)] for every real scan (when present) and the synthetic frame."""
    out = []
    d = real_lidar_dir()
    files = sorted(d.glob("*.bin"))
    if not files:
        print(f"[partition] no real LiDAR scans at {d}: running the synthetic frame only")
    for f in files:
        pts = torch.from_numpy(np.fromfile(f, dtype=np.float32).reshape(-1, 5))
        out.append((f.stem, pillar_coords(pts)))
    out.append(("synthetic150k", pillar_coords(synthetic_frame())))
    return out


# ----------------------------------------------------------------------------- baselines (plain PyTorch)
def flat_baseline(coords, S, w, G, axis, shift):
    """FlatFormer partition with torch ops: the official key, stable argsort, vectorised group cutting; a short
    last group is filled with the previous group's slots (the official rule), or cycles its own voxels (masked)
    when the sample has one group only."""
    b, y, x = coords[:, 0].long(), coords[:, 2].long(), coords[:, 3].long()
    if shift:
        x, y = x + w // 2, y + w // 2
    x1, y1, x2, y2 = x // w, y // w, x % w, y % w
    n1 = 2 * (-(-S // w) + 1)
    sg = lambda t: 1 - 2 * (t % 2)
    if axis == "x":
        key = (n1 * y1 + sg(y1) * x1) * 4 * w * w + sg(y1) * (2 * w * x2 + sg(x2) * y2)
    else:
        key = (n1 * x1 + sg(x1) * y1) * 4 * w * w + sg(x1) * (2 * w * y2 + sg(y2) * x2)
    order = torch.argsort(key + b * S * S * 10, stable=True)
    counts = torch.bincount(b)
    ng = (counts + G - 1) // G
    start, gstart = torch.cumsum(counts, 0) - counts, torch.cumsum(ng, 0) - ng
    dev = coords.device  # the baselines also run on the GPU (suite_cuda)
    gb = torch.repeat_interleave(torch.arange(counts.numel(), device=dev), ng)
    t = torch.arange(gb.numel(), device=dev) - gstart[gb]
    n = counts[gb][:, None]
    j = torch.arange(G, device=dev)
    pos = t[:, None] * G + j
    real = torch.clamp(n - t[:, None] * G, max=G)
    fill = pos >= n
    prev = fill & (t[:, None] > 0)
    pos = torch.where(prev, pos - G, torch.where(fill, t[:, None] * G + j % real, pos))
    pad = fill & ~prev
    idx = order[start[gb][:, None] + pos]
    inverse = torch.empty_like(order)
    inverse[idx[~fill]] = torch.arange(idx.numel(), device=dev).view_as(idx)[~fill]
    return idx, inverse, gb, pad


def rotated_sets_baseline(coords, S, w, tau):
    """DSVT rotated sets with torch ops: per-window rank via a stable sort, then the slot gather."""
    b, y, x = coords[:, 0].long(), coords[:, 2].long(), coords[:, 3].long()
    M = -(-S // w) + 1
    win = b * M * M * 2 + (x // w) * M * 2 + (y // w) * 2
    ix, iy = x % w, y % w
    out_idx, out_pad = [], []
    for key in (iy * w + ix, ix * w + iy):
        perm = torch.argsort(win * w * w + key, stable=True)
        wins, n = torch.unique_consecutive(win[perm], return_counts=True)
        start = torch.cumsum(n, 0) - n
        ns = (n + tau - 1) // tau
        sw = torch.repeat_interleave(torch.arange(n.numel(), device=n.device), ns)
        k = torch.arange(sw.numel(), device=n.device) - torch.repeat_interleave(torch.cumsum(ns, 0) - ns, ns)
        rank = ((k[:, None] * tau + torch.arange(tau, device=n.device)) * n[sw, None]) // (ns[sw, None] * tau)
        out_idx.append(perm[start[sw, None] + rank])
        pad = torch.zeros_like(rank, dtype=torch.bool)
        pad[:, 1:] = rank[:, 1:] == rank[:, :-1]
        out_pad.append(pad)
    return torch.stack(out_idx), torch.stack(out_pad), wins[sw]


def sla_baseline(q, k, v, offsets, counts, eps=1e-6):
    """ReLU linear attention per window with index_add_ (rows sorted by window, no gaps)."""
    win = torch.repeat_interleave(torch.arange(offsets.numel(), device=q.device), counts)
    fq, fk = torch.relu(q), torch.relu(k)
    kv = q.new_zeros(offsets.numel(), q.shape[1], q.shape[2], v.shape[2]).index_add(
        0, win, fk.unsqueeze(-1) * v.unsqueeze(-2))
    s = q.new_zeros(offsets.numel(), q.shape[1], q.shape[2]).index_add(0, win, fk)
    num = torch.einsum("nhd,nhde->nhe", fq, kv[win])
    return num / ((fq * s[win]).sum(-1, keepdim=True) + eps)


# ----------------------------------------------------------------------------- cases
# The workloads and checks below are shared with suite_cuda, which runs them on GPU copies of the inputs.
FLAT_ORDERS = [("x", False), ("x", True), ("y", False), ("y", True)]


def equal_outputs(a, b):
    for x, y in zip(a, b):
        if not torch.equal(x, y):
            raise AssertionError("pc3d partition differs from the baseline")


def flat_x4(coords):
    """pc3d's four FlatFormer partitions (13x13 windows, G = 144) of ``coords``."""
    from pc3d.ops import flat_window_partition

    return [tuple(flat_window_partition(coords, (1, GRID, GRID), 13, 144, a, s, last_group="previous"))
            for a, s in FLAT_ORDERS]


def flat_x4_baseline(coords):
    return [flat_baseline(coords, GRID, 13, 144, a, s) for a, s in FLAT_ORDERS]


def check_flat_x4(r, q):
    for x, y in zip(r, q):
        equal_outputs(x, y)


def dsvt_sets(coords):
    """pc3d's DSVT rotated sets (12x12 windows, tau = 36): (indices, padding, set_window)."""
    from pc3d.ops import rotated_set_partition

    return tuple(rotated_set_partition(coords, (1, GRID, GRID), (1, 12, 12), 36))[:3]


def dsvt_sets_baseline(coords):
    return rotated_sets_baseline(coords, GRID, 12, 36)


def sla_step(fn, q, k, v, grad, seg):
    """A zero-argument forward + backward of attention ``fn`` on leaf tensors q, k, v (N, 4, 32) ->
    [out, grad q, grad k, grad v]."""
    def step():
        for t in (q, k, v):
            t.grad = None
        out = fn(q, k, v, seg.offsets, seg.counts)
        out.backward(grad)
        return [out.detach(), q.grad.clone(), k.grad.clone(), v.grad.clone()]
    return step


def check_sla(a, b):
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-4 * float(y.abs().max()))


def sla_inputs(N):
    """Seeded q, k, v (N, 4, 32) leaf tensors and the output gradient."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(N, 4, 32, generator=g).requires_grad_() for _ in range(3))
    return q, k, v, torch.randn(N, 4, 32, generator=g)


def _flat_cases(name, coords):
    return Case(SUITE, f"flat 13x13 G144 x4 {name} V={coords.shape[0]}", "pc3d.flat_window_partition",
                lambda: flat_x4(coords), "torch argsort+cut", lambda: flat_x4_baseline(coords), check_flat_x4,
                extra={"voxels": coords.shape[0]})


def _dsvt_case(name, coords):
    return Case(SUITE, f"dsvt 12x12 tau36 {name} V={coords.shape[0]}", "pc3d.rotated_set_partition",
                lambda: dsvt_sets(coords), "torch sort+gather", lambda: dsvt_sets_baseline(coords), equal_outputs,
                extra={"voxels": coords.shape[0]})


def _sla_case(name, coords):
    from pc3d.ops import scattered_linear_attention, sort_by_window

    seg = sort_by_window(coords, (1, GRID, GRID), 12)
    N = coords.shape[0]
    q, k, v, grad = sla_inputs(N)
    return Case(SUITE, f"sla C128 h4 win12 fwd+bwd {name} V={N}", "pc3d.scattered_linear_attention",
                sla_step(scattered_linear_attention, q, k, v, grad, seg), "torch index_add_",
                sla_step(sla_baseline, q, k, v, grad, seg), check_sla, repeats=3, warmup=1,
                extra={"voxels": N, "windows": int(seg.offsets.numel())})


def cases() -> Iterator[Case]:
    for name, coords in inputs():
        yield _flat_cases(name, coords)
        yield _dsvt_case(name, coords)
        yield _sla_case(name, coords)
