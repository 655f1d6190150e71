"""Plain-Python / PyTorch references for pc3d's box ops (tests only; slow but independent).

The kernels clip one rectangle by the other (Sutherland-Hodgman in the first box's frame). The IoU
reference here uses a different construction in the world frame: the intersection of two convex
polygons is the convex hull of (corners of A inside B) + (corners of B inside A) + (edge crossings),
whose area is taken by sorting the points by angle and applying the shoelace formula.
Boxes: (x, y, z, dx, dy, dz, heading).
"""
import math
from typing import List, Sequence, Tuple

import torch

Point = Tuple[float, float]


def box_corners_bev(box: Sequence[float]) -> List[Point]:
    """BEV corners of one box, counter-clockwise, world frame, Python floats (double)."""
    x, y, _, dx, dy, _, h = (float(v) for v in box)
    c, s = math.cos(h), math.sin(h)
    out = []
    for sx, sy in ((1, 1), (-1, 1), (-1, -1), (1, -1)):
        lx, ly = sx * dx / 2, sy * dy / 2
        out.append((x + c * lx - s * ly, y + s * lx + c * ly))
    return out


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _inside_convex(p: Point, poly: List[Point], tol: float) -> bool:
    """p inside the CCW convex polygon, boundary included (with an absolute tolerance)."""
    n = len(poly)
    for i in range(n):
        a, b = poly[i], poly[(i + 1) % n]
        edge = math.hypot(b[0] - a[0], b[1] - a[1])
        if _cross(a, b, p) < -tol * max(edge, 1.0):
            return False
    return True


def _segment_crossings(p: List[Point], q: List[Point]) -> List[Point]:
    out = []
    for i in range(len(p)):
        a, b = p[i], p[(i + 1) % len(p)]
        r = (b[0] - a[0], b[1] - a[1])
        for j in range(len(q)):
            c, d = q[j], q[(j + 1) % len(q)]
            s = (d[0] - c[0], d[1] - c[1])
            den = r[0] * s[1] - r[1] * s[0]
            if abs(den) < 1e-15:
                continue  # parallel: shared pieces show up as corners inside the other polygon
            w = (c[0] - a[0], c[1] - a[1])
            t = (w[0] * s[1] - w[1] * s[0]) / den
            u = (w[0] * r[1] - w[1] * r[0]) / den
            if -1e-12 <= t <= 1 + 1e-12 and -1e-12 <= u <= 1 + 1e-12:
                out.append((a[0] + t * r[0], a[1] + t * r[1]))
    return out


def polygon_area_ccw_hull(points: List[Point]) -> float:
    """Area of the convex hull of points (sorted by angle about their centroid)."""
    if len(points) < 3:
        return 0.0
    cx = sum(p[0] for p in points) / len(points)
    cy = sum(p[1] for p in points) / len(points)
    pts = sorted(points, key=lambda p: math.atan2(p[1] - cy, p[0] - cx))
    area = 0.0
    for i in range(len(pts)):
        x0, y0 = pts[i]
        x1, y1 = pts[(i + 1) % len(pts)]
        area += x0 * y1 - x1 * y0
    return max(0.0, area / 2)


def intersection_area_bev_ref(a: Sequence[float], b: Sequence[float]) -> float:
    if min(float(a[3]), float(a[4]), float(b[3]), float(b[4])) <= 0:
        return 0.0
    pa, pb = box_corners_bev(a), box_corners_bev(b)
    pts = [p for p in pa if _inside_convex(p, pb, 1e-12)]
    pts += [p for p in pb if _inside_convex(p, pa, 1e-12)]
    pts += _segment_crossings(pa, pb)
    return polygon_area_ccw_hull(pts)


def _iou(inter: float, union: float) -> float:
    return 0.0 if union <= 0 else min(1.0, max(0.0, inter / union))


def iou_bev_ref(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, 7), (M, 7) -> (N, M) float64 pairwise BEV IoU."""
    out = torch.zeros(a.shape[0], b.shape[0], dtype=torch.float64)
    for i, ba in enumerate(a.tolist()):
        for j, bb in enumerate(b.tolist()):
            inter = intersection_area_bev_ref(ba, bb)
            out[i, j] = _iou(inter, ba[3] * ba[4] + bb[3] * bb[4] - inter)
    return out


def iou_3d_ref(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, 7), (M, 7) -> (N, M) float64 pairwise 3D IoU of upright boxes (Waymo's definition)."""
    out = torch.zeros(a.shape[0], b.shape[0], dtype=torch.float64)
    for i, ba in enumerate(a.tolist()):
        for j, bb in enumerate(b.tolist()):
            zo = min(ba[2] + ba[5] / 2, bb[2] + bb[5] / 2) - max(ba[2] - ba[5] / 2, bb[2] - bb[5] / 2)
            if zo <= 0:
                continue
            inter = intersection_area_bev_ref(ba, bb) * zo
            out[i, j] = _iou(inter, ba[3] * ba[4] * ba[5] + bb[3] * bb[4] * bb[5] - inter)
    return out


def local_coords_ref(points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """(N, 3), (M, 7) -> (N, M, 3) float64 point coordinates in each box's frame (origin at the centre)."""
    p = points.double()[:, None, :]
    b = boxes.double()[None, :, :]
    d = p - b[..., :3]
    c, s = torch.cos(b[..., 6]), torch.sin(b[..., 6])
    lx = c * d[..., 0] + s * d[..., 1]
    ly = -s * d[..., 0] + c * d[..., 1]
    return torch.stack([lx, ly, d[..., 2]], dim=-1)


def points_in_boxes_mask_ref(points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """(N, M) bool, closed boxes: |local| <= size / 2 on every axis."""
    local = local_coords_ref(points, boxes)
    half = boxes.double()[None, :, 3:6] / 2
    return (local.abs() <= half).all(dim=-1)


def boundary_distance_ref(points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """(N, M) float64: how far each point is from flipping in/out of each box (min over axes of
    | |local| - half |), used to ignore rounding-level disagreements exactly on a face."""
    local = local_coords_ref(points, boxes)
    half = boxes.double()[None, :, 3:6] / 2
    return (local.abs() - half).abs().min(dim=-1).values


def first_box_ref(mask: torch.Tensor) -> torch.Tensor:
    """(N, M) bool -> (N,) int64 first True column, -1 for none."""
    n, m = mask.shape
    idx = torch.arange(m, dtype=torch.int64).expand(n, m)
    first = torch.where(mask, idx, torch.full_like(idx, m)).min(dim=1).values if m else torch.full((n,), m)
    return torch.where(first == m, torch.full_like(first, -1), first)


def nms_ref(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float,
            iou: torch.Tensor = None) -> torch.Tensor:
    """Greedy NMS in plain Python over a reference IoU matrix; stable descending score order."""
    if iou is None:
        iou = iou_bev_ref(boxes, boxes)
    order = sorted(range(boxes.shape[0]), key=lambda i: -float(scores[i]))  # sorted() is stable
    keep, removed = [], set()
    for i in order:
        if i in removed:
            continue
        keep.append(i)
        for j in order:
            if j not in removed and j != i and float(iou[i, j]) > iou_threshold:
                removed.add(j)
    return torch.tensor(keep, dtype=torch.int64)
