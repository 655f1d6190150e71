"""Benchmark suite ``boxes``: pc3d's rotated NMS and pairwise 3D IoU vs plain-PyTorch baselines.

The baselines are what one writes without a compiled op: a vectorised PyTorch rotated-rectangle
intersection (convex hull of corner-inside points and edge crossings, sorted by angle, shoelace area)
and, for NMS, the usual Python greedy loop that computes one kept box against the remaining ones with
it. Both baselines skip pairs whose circumscribed circles are apart, as the pc3d kernels do. Each case's ``check`` verifies that pc3d and the baseline agree before anything is timed.
"""
import math
from typing import Iterator

import torch

from pc3d.benchmark.harness import Case

SUITE = "boxes"


# ---------------------------------------------------------------- plain-PyTorch baseline geometry
def _corners(b: torch.Tensor) -> torch.Tensor:
    """(P, 7) boxes -> (P, 4, 2) BEV corners, counter-clockwise."""
    signs = b.new_tensor([[1, 1], [-1, 1], [-1, -1], [1, -1]])
    local = signs[None] * b[:, None, 3:5] / 2
    c, s = torch.cos(b[:, 6])[:, None], torch.sin(b[:, 6])[:, None]
    x = b[:, None, 0] + c * local[..., 0] - s * local[..., 1]
    y = b[:, None, 1] + s * local[..., 0] + c * local[..., 1]
    return torch.stack([x, y], dim=-1)


def _cross(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]


def _inside(pts: torch.Tensor, poly: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """(P, K, 2) points in (P, 4, 2) CCW convex polygons (boundary included) -> (P, K) bool."""
    start = poly[:, None, :, :]
    edge = torch.roll(poly, -1, dims=1)[:, None] - start
    return (_cross(edge, pts[:, :, None, :] - start) >= -eps).all(dim=-1)


def torch_intersection_area(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(P, 7), (P, 7) -> (P,) BEV intersection areas of paired rotated rectangles."""
    ca, cb = _corners(a), _corners(b)
    ra = torch.roll(ca, -1, dims=1) - ca
    rb = torch.roll(cb, -1, dims=1) - cb
    pa, da = ca[:, :, None], ra[:, :, None]  # (P, 4, 1, 2)
    pb, db = cb[:, None], rb[:, None]  # (P, 1, 4, 2)
    den = _cross(da, db)
    safe = torch.where(den.abs() > 1e-12, den, torch.ones_like(den))
    w = pb - pa
    t, u = _cross(w, db) / safe, _cross(w, da) / safe
    hit = (den.abs() > 1e-12) & (t >= 0) & (t <= 1) & (u >= 0) & (u <= 1)
    cross_pts = (pa + t[..., None] * da).reshape(-1, 16, 2)
    cand = torch.cat([ca, cb, cross_pts], dim=1)  # (P, 24, 2)
    valid = torch.cat([_inside(ca, cb), _inside(cb, ca), hit.reshape(-1, 16)], dim=1)
    count = valid.sum(dim=1)
    centre = (cand * valid[..., None]).sum(dim=1) / count.clamp(min=1)[:, None]
    angle = torch.atan2(cand[..., 1] - centre[:, None, 1], cand[..., 0] - centre[:, None, 0])
    angle = torch.where(valid, angle, torch.full_like(angle, 10.0))  # invalid points sort last
    order = angle.argsort(dim=1)
    pts = torch.gather(cand, 1, order[..., None].expand(-1, -1, 2))
    ok = torch.gather(valid, 1, order)
    pts = torch.where(ok[..., None], pts, pts[:, :1])  # padding repeats the first vertex: adds no area
    area = 0.5 * _cross(pts, torch.roll(pts, -1, dims=1)).sum(dim=1).abs()
    return torch.where(count >= 3, area, torch.zeros_like(area))


def _radius(b: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.hypot(b[..., 3], b[..., 4])


def torch_iou_3d(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, 7), (M, 7) -> (N, M) pairwise 3D IoU in plain PyTorch.

    Like any sensible implementation it first drops pairs whose z ranges or circumscribed circles
    are apart (vectorised over all N x M pairs) and clips only the remaining candidates.
    """
    zo = (torch.minimum(a[:, None, 2] + a[:, None, 5] / 2, b[None, :, 2] + b[None, :, 5] / 2)
          - torch.maximum(a[:, None, 2] - a[:, None, 5] / 2, b[None, :, 2] - b[None, :, 5] / 2)).clamp(min=0)
    near = torch.cdist(a[:, :2], b[:, :2]) <= _radius(a)[:, None] + _radius(b)[None, :]
    ia, ib = torch.nonzero(near & (zo > 0), as_tuple=True)
    out = torch.zeros(a.shape[0], b.shape[0], dtype=a.dtype)
    pa, pb = a[ia], b[ib]
    inter = torch_intersection_area(pa, pb) * zo[ia, ib]
    union = pa[:, 3:6].prod(dim=1) + pb[:, 3:6].prod(dim=1) - inter
    out[ia, ib] = torch.where(union > 0, inter / union.clamp(min=1e-30), torch.zeros_like(inter))
    return out


def torch_nms_bev(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Greedy NMS: Python loop, each kept box against the remaining ones whose circumscribed circles
    meet its own (the others have IoU 0), with torch ops."""
    rest = torch.sort(scores, descending=True, stable=True).indices
    radius = _radius(boxes)
    keep = []
    while rest.numel():
        i = rest[0]
        keep.append(int(i))
        rest = rest[1:]
        near = torch.hypot(boxes[rest, 0] - boxes[i, 0], boxes[rest, 1] - boxes[i, 1]) <= radius[rest] + radius[i]
        cand = rest[near]
        if cand.numel() == 0:
            continue
        inter = torch_intersection_area(boxes[i].expand(cand.numel(), 7), boxes[cand])
        area_i = boxes[i, 3] * boxes[i, 4]
        iou = inter / (area_i + boxes[cand, 3] * boxes[cand, 4] - inter).clamp(min=1e-30)
        drop = torch.zeros_like(rest, dtype=torch.bool)
        drop[near.nonzero(as_tuple=True)[0]] = iou > threshold
        rest = rest[~drop]
    return torch.tensor(keep, dtype=torch.int64)


# ---------------------------------------------------------------- workloads
def detections(n: int, seed: int = 0) -> tuple:
    """Detector-like output: n boxes around n / 10 objects in a 150 m square (float32)."""
    gen = torch.Generator().manual_seed(seed)
    objects = max(1, n // 10)
    centre = (torch.rand(objects, 2, generator=gen) - 0.5) * 150
    size = torch.tensor([4.5, 2.0, 1.7]) * (0.6 + 0.8 * torch.rand(objects, 3, generator=gen))
    heading = (torch.rand(objects, 1, generator=gen) * 2 - 1) * math.pi
    obj = torch.cat([centre, torch.zeros(objects, 1), size, heading], dim=1)
    pick = torch.randint(0, objects, (n,), generator=gen)
    noise = torch.randn(n, 7, generator=gen) * torch.tensor([0.5, 0.5, 0.2, 0.3, 0.15, 0.1, 0.15])
    boxes = obj[pick] + noise
    boxes[:, 3:6] = boxes[:, 3:6].abs()
    return boxes, torch.rand(n, generator=gen)


def _check_same_keep(impl_out, base_out) -> None:
    if not torch.equal(impl_out.cpu(), base_out.cpu()):
        raise AssertionError(f"NMS differs: pc3d kept {impl_out.numel()}, baseline {base_out.numel()}")


def _check_close(impl_out, base_out) -> None:
    err = (impl_out.double() - base_out.double()).abs().max().item()
    if err > 1e-6:
        raise AssertionError(f"iou_3d_rotated differs from the torch baseline by {err:.3g}")


def cases() -> Iterator[Case]:
    from pc3d.ops import iou_3d_rotated, nms_bev_rotated

    for n in (2000, 5000):
        boxes, scores = detections(n)
        yield Case(SUITE, f"nms_bev_rotated N={n} thr=0.1", "pc3d.ops.nms_bev_rotated",
                   lambda b=boxes, s=scores: nms_bev_rotated(b, s, 0.1),
                   "python greedy + torch rotated IoU", lambda b=boxes.double(), s=scores: torch_nms_bev(b, s, 0.1),
                   # check() already runs both once (warm-up); the N=5000 baseline takes seconds per run
                   check=_check_same_keep, repeats=3 if n < 5000 else 2, warmup=0, extra={"boxes": n})
    a, _ = detections(500, seed=1)
    b, _ = detections(500, seed=2)
    a64, b64 = a.double(), b.double()
    yield Case(SUITE, "iou_3d_rotated 500x500 float64", "pc3d.ops.iou_3d_rotated",
               lambda: iou_3d_rotated(a64, b64), "vectorised torch convex-hull IoU",
               lambda: torch_iou_3d(a64, b64), check=_check_close, repeats=3, warmup=1, extra={"pairs": 250_000})
