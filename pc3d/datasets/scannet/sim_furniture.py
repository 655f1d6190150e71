"""Furniture for simulated ScanNet rooms, built from the simulator's mesh primitives.

Each builder takes a ``numpy.random.Generator`` and returns ``(parts, (sx, sy))``: ``parts`` a list of
``(vertices (V, 3) float64, faces (F, 3) int64)`` in a local frame (footprint centred on the origin,
floor at z = 0, front towards -y) and the footprint size. ``FURNITURE`` maps each ScanNet raw category
(the label string written to ``aggregation.json``) to its builder; ``LABEL_ROWS`` lists every raw
category the simulator writes with its NYU40 id and class, which becomes the simulated
``scannetv2-labels.combined.tsv``.
"""
import numpy as np

from ..simulator.meshes import cylinder, ellipsoid, hexahedron

# (raw_category, nyu40id, nyu40class): raw names as ScanNet annotators wrote them, mapped like ScanNet's tsv.
LABEL_ROWS = (
    ("wall", 1, "wall"), ("floor", 2, "floor"), ("cabinet", 3, "cabinet"), ("kitchen cabinets", 3, "cabinet"),
    ("bed", 4, "bed"), ("chair", 5, "chair"), ("office chair", 5, "chair"), ("couch", 6, "sofa"),
    ("sofa", 6, "sofa"), ("table", 7, "table"), ("coffee table", 7, "table"), ("door", 8, "door"),
    ("window", 9, "window"), ("bookshelf", 10, "bookshelf"), ("picture", 11, "picture"),
    ("counter", 12, "counter"), ("desk", 14, "desk"), ("curtain", 16, "curtain"), ("dresser", 17, "dresser"),
    ("pillow", 18, "pillow"), ("refrigerator", 24, "refridgerator"), ("shower curtain", 28, "shower curtain"),
    ("box", 29, "box"), ("nightstand", 32, "night stand"), ("toilet", 33, "toilet"), ("sink", 34, "sink"),
    ("lamp", 35, "lamp"), ("bathtub", 36, "bathtub"), ("trash can", 39, "otherfurniture"),
    ("ottoman", 39, "otherfurniture"),
)


def box(x0, x1, y0, y1, z0, z1):
    return hexahedron(x0, x1, y0, y1, z0, z1)


def _legs(sx, sy, h, r, inset):
    ax, ay = sx / 2 - inset, sy / 2 - inset
    return [cylinder((x, y, 0.0), (x, y, h), r, segments=6) for x in (-ax, ax) for y in (-ay, ay)]


def table(rng, coffee=False):
    if coffee:
        sx, sy = rng.uniform(0.8, 1.2), rng.uniform(0.45, 0.7)
    else:
        sx, sy = rng.uniform(1.0, 1.8), rng.uniform(0.7, 1.0)
    h = rng.uniform(0.35, 0.5) if coffee else rng.uniform(0.72, 0.78)
    top = box(-sx / 2, sx / 2, -sy / 2, sy / 2, h - 0.04, h)
    return [top] + _legs(sx, sy, h - 0.04, 0.025, 0.06), (sx, sy)


def desk(rng):
    sx, sy, h = rng.uniform(1.1, 1.6), rng.uniform(0.6, 0.8), rng.uniform(0.72, 0.76)
    parts = [box(-sx / 2, sx / 2, -sy / 2, sy / 2, h - 0.03, h),
             box(-sx / 2, -sx / 2 + 0.03, -sy / 2, sy / 2, 0, h - 0.03),
             box(sx / 2 - 0.03, sx / 2, -sy / 2, sy / 2, 0, h - 0.03)]
    if rng.random() < 0.6:  # drawer block
        parts.append(box(sx / 2 - 0.45, sx / 2 - 0.03, -sy / 2 + 0.05, sy / 2, 0.1, h - 0.03))
    return parts, (sx, sy)


def chair(rng):
    s, h = rng.uniform(0.42, 0.5), rng.uniform(0.43, 0.48)
    parts = [box(-s / 2, s / 2, -s / 2, s / 2, h - 0.05, h)] + _legs(s, s, h - 0.05, 0.015, 0.03)
    parts.append(box(-s / 2, s / 2, s / 2 - 0.04, s / 2, h, h + rng.uniform(0.35, 0.5)))
    return parts, (s, s)


def office_chair(rng):
    s, h = rng.uniform(0.5, 0.6), rng.uniform(0.45, 0.52)
    parts = [box(-s / 2, s / 2, -s / 2, s / 2, h - 0.08, h), cylinder((0, 0, 0.08), (0, 0, h - 0.08), 0.03, 8),
             box(-s / 2, s / 2, s / 2 - 0.07, s / 2 - 0.02, h + 0.05, h + rng.uniform(0.4, 0.55))]
    for a in np.linspace(0, 2 * np.pi, 5, endpoint=False) + rng.uniform(0, 1):  # star base
        parts.append(cylinder((0, 0, 0.05), (0.3 * np.cos(a), 0.3 * np.sin(a), 0.05), 0.025, 6))
    return parts, (0.62, 0.62)


def bed(rng):
    sx, sy = rng.choice([0.95, 1.45, 1.65]), rng.uniform(1.95, 2.15)
    parts = [box(-sx / 2, sx / 2, -sy / 2, sy / 2, 0.0, 0.3),
             box(-sx / 2 + 0.02, sx / 2 - 0.02, -sy / 2 + 0.02, sy / 2 - 0.02, 0.3, 0.52),
             box(-sx / 2, sx / 2, sy / 2 - 0.06, sy / 2, 0.0, rng.uniform(0.9, 1.2))]
    return parts, (sx, sy)


def sofa(rng):
    sx, sy = rng.uniform(1.6, 2.4), rng.uniform(0.85, 1.0)
    parts = [box(-sx / 2, sx / 2, -sy / 2, sy / 2, 0.08, 0.43), box(-sx / 2, sx / 2, sy / 2 - 0.22, sy / 2, 0.43, 0.85),
             box(-sx / 2, -sx / 2 + 0.18, -sy / 2, sy / 2, 0.43, 0.62),
             box(sx / 2 - 0.18, sx / 2, -sy / 2, sy / 2, 0.43, 0.62)]
    return parts, (sx, sy)


def cabinet(rng, kitchen=False):
    sx = rng.uniform(0.8, 2.4) if kitchen else rng.uniform(0.5, 1.2)
    sy, h = (0.6, 0.88) if kitchen else (rng.uniform(0.4, 0.6), rng.uniform(0.8, 2.0))
    parts = [box(-sx / 2, sx / 2, -sy / 2, sy / 2, 0.0, h)]
    for x in np.arange(-sx / 2 + 0.3, sx / 2, 0.5):  # door handles stick out of the front
        parts.append(box(x - 0.01, x + 0.01, -sy / 2 - 0.02, -sy / 2, h * 0.5, h * 0.5 + 0.12))
    return parts, (sx, sy)


def bookshelf(rng):
    sx, sy, h = rng.uniform(0.7, 1.2), rng.uniform(0.28, 0.38), rng.uniform(1.4, 2.1)
    parts = [box(-sx / 2, -sx / 2 + 0.02, -sy / 2, sy / 2, 0, h), box(sx / 2 - 0.02, sx / 2, -sy / 2, sy / 2, 0, h),
             box(-sx / 2, sx / 2, sy / 2 - 0.01, sy / 2, 0, h)]
    for z in np.linspace(0.05, h - 0.02, int(h / 0.35) + 1):
        parts.append(box(-sx / 2, sx / 2, -sy / 2, sy / 2, z - 0.02, z))
        if z < h - 0.2:  # books: a block on most shelves
            w = rng.uniform(0.3, sx - 0.06)
            x0 = rng.uniform(-sx / 2 + 0.02, sx / 2 - 0.02 - w)
            parts.append(box(x0, x0 + w, -sy / 2 + 0.05, sy / 2 - 0.02, z, z + rng.uniform(0.18, 0.28)))
    return parts, (sx, sy)


def refrigerator(rng):
    sx, sy, h = rng.uniform(0.6, 0.9), rng.uniform(0.6, 0.75), rng.uniform(1.5, 1.9)
    return [box(-sx / 2, sx / 2, -sy / 2, sy / 2, 0, h), box(sx / 2 - 0.08, sx / 2 - 0.06, -sy / 2 - 0.04, -sy / 2,
                                                             h * 0.5, h * 0.8)], (sx, sy)


def counter(rng):
    sx = rng.uniform(1.2, 2.5)
    parts = [box(-sx / 2, sx / 2, -0.32, 0.32, 0.0, 0.86), box(-sx / 2 - 0.02, sx / 2 + 0.02, -0.34, 0.32, 0.86, 0.9)]
    return parts, (sx + 0.04, 0.66)


def toilet(rng):
    parts = [box(-0.2, 0.2, 0.18, 0.36, 0.0, 0.8), cylinder((0, -0.05, 0), (0, -0.05, 0.4), 0.2, 10, radius_y=0.25)]
    return parts, (0.42, 0.72)


def sink(rng):
    r = rng.uniform(0.2, 0.3)
    return [cylinder((0, 0, 0), (0, 0, 0.7), 0.08, 8), box(-r, r, -r * 0.8, r * 0.8, 0.7, 0.85)], (2 * r, 1.6 * r)


def bathtub(rng):
    sx, sy, h, t = rng.uniform(1.5, 1.8), rng.uniform(0.7, 0.8), rng.uniform(0.5, 0.6), 0.06
    parts = [box(-sx / 2, sx / 2, -sy / 2, sy / 2, 0, 0.1), box(-sx / 2, sx / 2, -sy / 2, -sy / 2 + t, 0, h),
             box(-sx / 2, sx / 2, sy / 2 - t, sy / 2, 0, h), box(-sx / 2, -sx / 2 + t, -sy / 2, sy / 2, 0, h),
             box(sx / 2 - t, sx / 2, -sy / 2, sy / 2, 0, h)]
    return parts, (sx, sy)


def trash_can(rng):
    r, h = rng.uniform(0.12, 0.2), rng.uniform(0.3, 0.6)
    return [cylinder((0, 0, 0), (0, 0, h), r, 10)], (2 * r, 2 * r)


def nightstand(rng):
    s = rng.uniform(0.4, 0.55)
    return [box(-s / 2, s / 2, -0.2, 0.2, 0, rng.uniform(0.5, 0.65))], (s, 0.4)


def dresser(rng):
    sx = rng.uniform(0.9, 1.4)
    return [box(-sx / 2, sx / 2, -0.25, 0.25, 0, rng.uniform(0.8, 1.1))], (sx, 0.5)


def lamp(rng):
    h = rng.uniform(1.3, 1.7)
    return [cylinder((0, 0, 0), (0, 0, 0.03), 0.15, 10), cylinder((0, 0, 0.03), (0, 0, h), 0.015, 6),
            ellipsoid((0, 0, h), (0.18, 0.18, 0.14))], (0.36, 0.36)


def clutter_box(rng):
    sx, sy, h = rng.uniform(0.2, 0.6, size=3)
    return [box(-sx / 2, sx / 2, -sy / 2, sy / 2, 0, h)], (sx, sy)


def ottoman(rng):
    s = rng.uniform(0.4, 0.6)
    return [box(-s / 2, s / 2, -s / 2, s / 2, 0.0, 0.42)], (s, s)


FURNITURE = {
    "table": table, "coffee table": lambda rng: table(rng, coffee=True), "desk": desk, "chair": chair,
    "office chair": office_chair, "bed": bed, "sofa": sofa, "couch": sofa, "cabinet": cabinet,
    "kitchen cabinets": lambda rng: cabinet(rng, kitchen=True), "bookshelf": bookshelf,
    "refrigerator": refrigerator, "counter": counter, "toilet": toilet, "sink": sink, "bathtub": bathtub,
    "trash can": trash_can, "nightstand": nightstand, "dresser": dresser, "lamp": lamp, "box": clutter_box,
    "ottoman": ottoman,
}

# Base colours (RGB 0..255) by raw category; rooms vary them per object.
COLOURS = {
    "wall": (215, 210, 195), "floor": (150, 115, 80), "bed": (180, 170, 200), "pillow": (235, 235, 230),
    "sofa": (95, 110, 140), "couch": (120, 80, 70), "chair": (120, 85, 55), "office chair": (40, 40, 45),
    "table": (140, 100, 60), "coffee table": (110, 75, 45), "desk": (190, 160, 120), "cabinet": (200, 190, 170),
    "kitchen cabinets": (230, 230, 225), "bookshelf": (160, 120, 80), "refrigerator": (225, 228, 230),
    "counter": (120, 120, 125), "toilet": (245, 245, 245), "sink": (235, 235, 240), "bathtub": (240, 240, 240),
    "trash can": (70, 90, 80), "nightstand": (130, 95, 60), "dresser": (150, 105, 70), "lamp": (240, 225, 180),
    "box": (175, 140, 95), "door": (165, 125, 85), "window": (170, 200, 220), "picture": (90, 120, 60),
    "curtain": (150, 60, 60), "shower curtain": (200, 220, 235), "ottoman": (130, 60, 80),
}
