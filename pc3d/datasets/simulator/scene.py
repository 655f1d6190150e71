"""Procedural static world: road layout, ground, kerbs/sidewalks, building facades, poles, trees, clutter.

Everything is built in a *road frame* (u along the main road, v across it, z up) and moved into the
ego frame at the end of ``simulate_frame``. The main road runs along u with ``lanes`` lanes each way
(right-hand traffic: +u traffic on v < 0), optional parking strips, kerbs of height ``kerb_height``,
sidewalks, then building blocks; with some probability a perpendicular cross street at u = ``uc``.

``RoadLayout.level(u, v)`` classifies any road-frame position as 0 road surface, 1 sidewalk, 2 block
(behind the sidewalks); ``ground(u, v)`` is the terrain height (slope + camber + roughness).
Static obstacles register their BEV footprints in ``Footprints`` so that objects never intersect them.
"""
from dataclasses import dataclass, field

import numpy as np

from ..box_utils import bev_overlap_matrix
from .meshes import cylinder, ellipsoid, heightfield, hexahedron

EXTENT = 85.0  # half-size of the generated world around the ego (metres); the LiDAR sees 75 m


class Footprints:
    """Growing list of occupied BEV rectangles ``(x, y, z, dx, dy, dz, heading)`` in the road frame."""

    def __init__(self):
        self.boxes = np.zeros((0, 7))
        self.radius = np.zeros(0)

    def free(self, box, margin=0.0):
        """True when ``box`` (7,) overlaps no registered footprint (grown by ``margin`` metres)."""
        box = np.asarray(box, dtype=np.float64)
        # Only footprints whose circumscribed circles meet need the exact separating-axis test.
        r = 0.5 * np.hypot(box[3], box[4]) + 3 * margin  # >= both grown half-diagonals
        near = np.hypot(self.boxes[:, 0] - box[0], self.boxes[:, 1] - box[1]) <= self.radius + r
        return not near.any() or not bev_overlap_matrix(box[None], self.boxes[near], margin).any()

    def add(self, box):
        box = np.asarray(box, dtype=np.float64)
        self.boxes = np.concatenate([self.boxes, box[None]])
        self.radius = np.append(self.radius, 0.5 * np.hypot(box[3], box[4]))


@dataclass
class RoadLayout:
    lane_width: float
    lanes: int  # per direction on the main road
    parking: tuple  # parking-strip width on the (v > 0, v < 0) sides, 0 for none
    sidewalk: tuple  # sidewalk width on the (v > 0, v < 0) sides
    kerb_height: float
    ego_v: float  # ego position (0, ego_v) in the road frame
    cross_u: float = None  # u of the cross street centre line, None without one
    cross_lanes: int = 1
    cross_lane_width: float = 3.5
    cross_parking: float = 0.0
    cross_sidewalk: float = 3.0
    slope: tuple = (0.0, 0.0)
    rough: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))  # rows (kx, ky, phase, amplitude)
    z0: float = 0.0
    lots: list = field(default_factory=list)  # open lots between buildings: (u0, u1, v0, v1)

    # Distances from the main centre line: carriageway edge r0, kerb r1, sidewalk back r2 (per side).
    def r(self, side):
        i = 0 if side > 0 else 1
        r0 = self.lanes * self.lane_width
        return r0, r0 + self.parking[i], r0 + self.parking[i] + self.sidewalk[i]

    def c(self):
        c0 = self.cross_lanes * self.cross_lane_width
        return c0, c0 + self.cross_parking, c0 + self.cross_parking + self.cross_sidewalk

    def level(self, u, v):
        """(N,) int: 0 road surface, 1 sidewalk, 2 block, for road-frame positions u, v (N,)."""
        u, v = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
        r1 = np.where(v > 0, self.r(1)[1], self.r(-1)[1])
        r2 = np.where(v > 0, self.r(1)[2], self.r(-1)[2])
        road, walk = np.abs(v) < r1, np.abs(v) < r2
        if self.cross_u is not None:
            _, c1, c2 = self.c()
            road |= np.abs(u - self.cross_u) < c1
            walk |= np.abs(u - self.cross_u) < c2
        return np.where(road, 0, np.where(walk, 1, 2))

    def ground(self, u, v):
        """Terrain height (N,) at road-frame positions: slope, 1.5 % road camber, roughness; 0 at the ego."""
        u, v = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
        z = self.slope[0] * u + self.slope[1] * v - 0.015 * np.minimum(np.abs(v), self.r(1)[1])
        for kx, ky, ph, amp in self.rough:
            z = z + amp * np.sin(kx * u + ky * v + ph)
        return z - self.z0

    def surface(self, u, v):
        """Height objects stand on: the ground, plus the kerb height on sidewalks."""
        return self.ground(u, v) + self.kerb_height * (self.level(u, v) == 1)


def sample_layout(rng):
    """Draws a random ``RoadLayout`` (lane counts, widths, cross street, terrain)."""
    lanes = int(rng.choice([1, 2, 2, 3]))
    lw = float(rng.uniform(3.2, 3.8))
    lay = RoadLayout(
        lane_width=lw, lanes=lanes,
        parking=tuple(float(rng.choice([0.0, 2.4], p=[0.3, 0.7])) for _ in range(2)),
        sidewalk=tuple(float(rng.uniform(2.5, 6.0)) for _ in range(2)),
        kerb_height=float(rng.uniform(0.1, 0.2)),
        ego_v=-(int(rng.integers(lanes)) + 0.5) * lw,
        slope=tuple(rng.uniform(-0.02, 0.02, 2)),  # <= 2.8 % grade: |z| < ~2 m at 75 m
    )
    if rng.random() < 0.55:
        lay.cross_u = float(rng.uniform(-45, 45))
        lay.cross_lanes = int(rng.choice([1, 2]))
        lay.cross_lane_width = float(rng.uniform(3.2, 3.8))
        lay.cross_parking = float(rng.choice([0.0, 2.4]))
        lay.cross_sidewalk = float(rng.uniform(2.5, 5.0))
    n = 6
    ang = rng.uniform(0, np.pi, n)
    k = 2 * np.pi / rng.uniform(4.0, 30.0, n)
    lay.rough = np.stack([k * np.cos(ang), k * np.sin(ang), rng.uniform(0, 2 * np.pi, n), rng.uniform(0.004, 0.02, n)], 1)
    lay.z0 = float(lay.ground(np.array([0.0]), np.array([lay.ego_v]))[0])
    return lay


def _grid_nodes(extent, step0=0.4, growth=0.02):
    """Symmetric node coordinates in [-extent, extent], spacing step0 + growth * |x|: fine near the
    sensor where beams are dense, coarse far away (keeps the triangle count, hence BVH time, low)."""
    xs = [0.0]
    while xs[-1] < extent:
        xs.append(xs[-1] + step0 + growth * xs[-1])
    xs = np.array(xs)
    return np.concatenate([-xs[:0:-1], xs])


def add_ground(builder, lay, rng):
    """Asphalt/terrain heightfield over the whole world (hidden under sidewalks and buildings)."""
    us = _grid_nodes(EXTENT)
    vs = us + lay.ego_v
    gu, gv = np.meshgrid(us, vs, indexing="ij")
    v, f = heightfield(us, vs, lay.ground(gu.ravel(), gv.ravel()).reshape(gu.shape))
    builder.add(v, f, float(rng.uniform(0.06, 0.14)))


def _slab(builder, lay, u0, u1, v0, v1, refl, step=2.0):
    """A sidewalk slab over [u0, u1] x [v0, v1] whose top follows the terrain + kerb height; its side
    walls are the kerbs."""
    us = np.linspace(u0, u1, max(2, int(np.ceil((u1 - u0) / step)) + 1))
    vs = np.linspace(v0, v1, max(2, int(np.ceil((v1 - v0) / step)) + 1))
    gu, gv = np.meshgrid(us, vs, indexing="ij")
    top = lay.ground(gu.ravel(), gv.ravel()).reshape(gu.shape) + lay.kerb_height
    v, f = heightfield(us, vs, top)
    builder.add(v, f, refl)
    # Walls: one quad strip around the border, from the top edge down below the terrain.
    ring = np.concatenate([np.stack([us, np.full_like(us, v0)], 1), np.stack([np.full_like(vs, u1), vs], 1),
                           np.stack([us[::-1], np.full_like(us, v1)], 1), np.stack([np.full_like(vs, u0), vs[::-1]], 1)])
    zt = lay.ground(ring[:, 0], ring[:, 1]) + lay.kerb_height
    n = len(ring)
    verts = np.concatenate([np.c_[ring, zt], np.c_[ring, zt - lay.kerb_height - 0.1]])
    i = np.arange(n - 1)
    faces = np.concatenate([np.stack([i, i + 1, n + i + 1], 1), np.stack([i, n + i + 1, n + i], 1)])
    builder.add(verts, faces, refl * 1.1)


def _intervals(lo, hi, cut):
    """[lo, hi] minus the open interval ``cut`` = (a, b) or None -> list of (lo, hi)."""
    if cut is None:
        return [(lo, hi)]
    return [(a, b) for a, b in ((lo, min(hi, cut[0])), (max(lo, cut[1]), hi)) if b - a > 0.5]


def add_sidewalks(builder, lay, rng):
    refl = float(rng.uniform(0.2, 0.35))
    L = EXTENT
    cut = None
    if lay.cross_u is not None:
        _, c1, c2 = lay.c()
        cut = (lay.cross_u - c1, lay.cross_u + c1)
    for side in (1, -1):
        _, r1, r2 = lay.r(side)
        v0, v1 = sorted((side * r1, side * r2))
        for a, b in _intervals(-L, L, cut):
            _slab(builder, lay, a, b, v0, v1, refl)
    if lay.cross_u is not None:
        for su in (1, -1):
            a, b = sorted((lay.cross_u + su * c1, lay.cross_u + su * c2))
            _slab(builder, lay, a, b, lay.r(1)[1], L + lay.ego_v, refl)
            _slab(builder, lay, a, b, -L + lay.ego_v, -lay.r(-1)[1], refl)


def _building(builder, foot, lay, u0, u1, v0, v1, rng):
    box = np.array([(u0 + u1) / 2, (v0 + v1) / 2, 0, u1 - u0, v1 - v0, 1, 0])
    if not foot.free(box, 0.05):
        return False
    zb = lay.ground(np.array([u0, u1, u0, u1]), np.array([v0, v0, v1, v1])).min() - 0.5
    v, f = hexahedron(u0, u1, v0, v1, zb, zb + 0.5 + float(rng.uniform(3.5, 25.0)))
    builder.add(v, f, float(rng.uniform(0.1, 0.5)))
    foot.add(box)
    return True


def add_buildings(builder, foot, lay, rng):
    """Rows of facades behind the sidewalks, with gaps; large gaps become open lots for parked cars."""
    L = EXTENT
    runs = []  # (axis 'u' or 'v', along-interval, facade coordinate, direction away from the street)
    cut = None
    if lay.cross_u is not None:
        _, _, c2 = lay.c()
        cut = (lay.cross_u - c2, lay.cross_u + c2)
    for side in (1, -1):
        for a, b in _intervals(-L, L, cut):
            runs.append(("u", a, b, side * lay.r(side)[2], side))
    if cut is not None:
        for su in (1, -1):
            runs.append(("v", lay.r(1)[2] + 1.0, L + lay.ego_v, lay.cross_u + su * lay.c()[2], su))
            runs.append(("v", -L + lay.ego_v, -lay.r(-1)[2] - 1.0, lay.cross_u + su * lay.c()[2], su))
    for axis, a, b, face, away in runs:
        t = a
        while t < b - 4.0:
            if rng.random() < 0.3:  # a gap: alley, or an open lot when wide
                gap = float(rng.uniform(3.0, 16.0))
                if axis == "u" and gap > 9.0:
                    lo, hi = sorted((face + away * 0.5, face + away * 14.0))
                    lay.lots.append((t + 0.5, min(t + gap, b) - 0.5, lo, hi))
                t += gap
                continue
            width = min(float(rng.uniform(6.0, 30.0)), b - t)
            setback = 0.0 if rng.random() < 0.6 else float(rng.uniform(0.5, 4.0))
            depth = float(rng.uniform(8.0, 20.0))
            near, far = face + away * setback, face + away * (setback + depth)
            lo, hi = sorted((near, far))
            if axis == "u":
                _building(builder, foot, lay, t, t + width, lo, hi, rng)
            else:
                _building(builder, foot, lay, lo, hi, t, t + width, rng)
            t += width


def add_street_furniture(builder, foot, lay, rng):
    """Poles (lamps, signs), trees and clutter (bins, hydrants, bollards, benches, bushes, cones)."""
    L = EXTENT - 5
    for side in (1, -1):
        _, r1, r2 = lay.r(side)
        u = float(rng.uniform(-L, -L + 20))
        while u < L:  # poles along the kerb
            v = side * (r1 + 0.35)
            if lay.level(np.array([u]), np.array([v]))[0] == 1:
                r, h = float(rng.uniform(0.07, 0.15)), float(rng.uniform(4.0, 9.0))
                z = lay.surface(np.array([u]), np.array([v]))[0]
                pv, pf = cylinder((u, v, z - 0.1), (u, v, z + h), r, 8)
                builder.add(pv, pf, float(rng.uniform(0.3, 0.6)))
                if rng.random() < 0.5:  # lamp arm over the road
                    pv, pf = cylinder((u, v, z + h - 0.3), (u, v - side * rng.uniform(1.2, 2.5), z + h), 0.06, 6)
                    builder.add(pv, pf, 0.4)
                if rng.random() < 0.35:  # a retro-reflective traffic sign facing the traffic
                    pv, pf = hexahedron(u - 0.03, u + 0.03, v - 0.35, v + 0.35, z + 2.0, z + 2.7)
                    builder.add(pv, pf, 0.9, retro=True)
                foot.add(np.array([u, v, 0, 2 * r, 2 * r, 1, 0]))
            u += float(rng.uniform(12.0, 32.0))
        if rng.random() < 0.5:  # a row of trees in the sidewalk
            u = float(rng.uniform(-L, -L + 10))
            while u < L:
                v = side * (r1 + min(1.2, (r2 - r1) / 2))
                if lay.level(np.array([u]), np.array([v]))[0] == 1 and foot.free(np.array([u, v, 0, .6, .6, 1, 0]), 0.3):
                    z = lay.surface(np.array([u]), np.array([v]))[0]
                    th, tr = float(rng.uniform(2.0, 3.5)), float(rng.uniform(0.12, 0.25))
                    pv, pf = cylinder((u, v, z - 0.1), (u, v, z + th), tr, 7)
                    builder.add(pv, pf, 0.35)
                    cr = rng.uniform(1.5, 3.0, 3) * np.array([1, 1, 0.8])
                    pv, pf = ellipsoid((u, v, z + th + 0.8 * cr[2]), cr)
                    builder.add(pv, pf, 0.3, dropout=0.35)
                    foot.add(np.array([u, v, 0, 2 * tr, 2 * tr, 1, 0]))
                u += float(rng.uniform(7.0, 15.0))
    n = int(rng.integers(10, 36))
    for _ in range(n):
        u = float(rng.uniform(-L, L))
        v = float(lay.ego_v + rng.uniform(-40, 40))
        lvl = lay.level(np.array([u]), np.array([v]))[0]
        kind = int(rng.integers(6)) if lvl > 0 else 6
        if lvl == 0 and rng.random() < 0.7:
            continue  # few things stand on the road: cones only
        yaw = float(rng.uniform(-np.pi, np.pi))
        size = [(0.6, 0.6, 1.05), (0.35, 0.35, 0.8), (0.22, 0.22, 1.0), (1.8, 0.6, 0.85), (1.6, 1.4, 1.2),
                (0.5, 0.5, 1.25), (0.35, 0.35, 0.7)][kind]
        box = np.array([u, v, 0, size[0], size[1], 1, yaw])
        if not foot.free(box, 0.2):
            continue
        z = lay.surface(np.array([u]), np.array([v]))[0]
        c, s = np.cos(yaw), np.sin(yaw)
        if kind in (1, 2):  # hydrant / bollard
            pv, pf = cylinder((u, v, z - 0.05), (u, v, z + size[2]), size[0] / 2, 8)
        elif kind == 4:  # bush
            pv, pf = ellipsoid((u, v, z + size[2] / 2), (size[0] / 2, size[1] / 2, size[2] / 2))
        else:  # bin, bench, newspaper box, cone (tapered)
            top = (-0.05, 0.05) if kind == 6 else None
            pv, pf = hexahedron(-size[0] / 2, size[0] / 2, -size[1] / 2, size[1] / 2, -0.05, size[2], top, top)
            pv = pv @ np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]]) + np.array([u, v, z])
        refl = 0.7 if kind == 6 else float(rng.uniform(0.15, 0.45))
        builder.add(pv, pf, refl, dropout=0.3 if kind == 4 else 0.0)
        foot.add(box)
