"""Procedurally furnished rooms: layout of walls, openings and furniture (aligned frame, metres).

``layout_room(rng)`` returns the room's objects, each a dict ``label`` (ScanNet raw category or None
for unannotated clutter), ``parts`` (list of ``(vertices (V, 3) float64, faces (F, 3) int64)`` placed in
the aligned room frame: floor z = 0, room footprint ``[0, W] x [0, L]``) and ``drop_bottom`` (faces
lying on the floor are not seen by a scanner). ``sim_scene`` turns the objects into a ScanNet-like
vertex cloud.
"""
import numpy as np

from ..simulator.meshes import ellipsoid, hexahedron, place
from .sim_furniture import FURNITURE, chair, office_chair

# Room type -> furniture: (raw category, min count, max count, placement 'wall' | 'free').
ROOM_TYPES = {
    "Bedroom / Hotel": [("bed", 1, 1, "wall"), ("nightstand", 0, 2, "wall"), ("dresser", 0, 1, "wall"),
                        ("desk", 0, 1, "wall"), ("cabinet", 0, 1, "wall"), ("lamp", 0, 1, "free"),
                        ("trash can", 0, 1, "free"), ("box", 0, 2, "free"), ("bookshelf", 0, 1, "wall")],
    "Living room / Lounge": [("sofa", 0, 1, "wall"), ("couch", 0, 1, "wall"), ("coffee table", 1, 1, "free"),
                             ("bookshelf", 0, 2, "wall"), ("chair", 0, 2, "free"), ("ottoman", 0, 1, "free"),
                             ("cabinet", 0, 1, "wall"), ("lamp", 0, 1, "free"), ("table", 0, 1, "free")],
    "Office": [("desk", 1, 3, "wall"), ("bookshelf", 0, 2, "wall"), ("cabinet", 0, 2, "wall"),
               ("trash can", 0, 2, "free"), ("table", 0, 1, "free"), ("box", 0, 2, "free")],
    "Kitchen": [("kitchen cabinets", 1, 2, "wall"), ("counter", 0, 1, "wall"), ("refrigerator", 1, 1, "wall"),
                ("table", 0, 1, "free"), ("trash can", 0, 1, "free"), ("sink", 0, 1, "wall")],
    "Bathroom": [("toilet", 1, 1, "wall"), ("sink", 1, 2, "wall"), ("bathtub", 0, 1, "wall"),
                 ("trash can", 0, 1, "free"), ("cabinet", 0, 1, "wall")],
}
GAP = 0.03  # furniture stands this far from the wall


def rectangle(p0, u, v):
    """A planar quad with corners p0, p0 + u, p0 + u + v, p0 + v: vertices (4, 3), faces (2, 3)."""
    p0, u, v = (np.asarray(a, dtype=np.float64) for a in (p0, u, v))
    return np.stack([p0, p0 + u, p0 + u + v, p0 + v]), np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int64)


def _wall_frame(wall, size):
    """Origin, unit direction along wall ``wall`` (0: y = 0, 1: x = W, 2: y = L, 3: x = 0), its length,
    its inward normal and the yaw that turns a local front (-y) into the room."""
    w, l = size
    return [((0, 0), (1, 0), w, (0, 1), np.pi), ((w, 0), (0, 1), l, (-1, 0), -np.pi / 2),
            ((w, l), (-1, 0), w, (0, -1), 0.0), ((0, l), (0, -1), l, (1, 0), np.pi / 2)][wall]


def wall_parts(wall, size, height, openings):
    """Rectangles covering wall ``wall`` except its ``openings`` [(u0, u1, z0, z1)] (non-overlapping in u)."""
    (ox, oy), (dx, dy), length, _, _ = _wall_frame(wall, size)
    cuts = sorted({0.0, length, *[c for o in openings for c in o[:2]]})
    parts = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        hole = [o for o in openings if o[0] <= a and b <= o[1]]
        spans = [(0.0, hole[0][2]), (hole[0][3], height)] if hole else [(0.0, height)]
        for z0, z1 in spans:
            if z1 - z0 > 1e-6:
                parts.append(rectangle((ox + dx * a, oy + dy * a, z0), ((b - a) * dx, (b - a) * dy, 0),
                                       (0, 0, z1 - z0)))
    return parts


def _aabb(parts):
    v = np.concatenate([p[0] for p in parts])
    return v.min(0), v.max(0)


def _fits(lo, hi, size, taken, margin=0.05):
    if lo[0] < -1e-9 or lo[1] < -1e-9 or hi[0] > size[0] + 1e-9 or hi[1] > size[1] + 1e-9:
        return False
    return all(hi[0] + margin <= a[0] or b[0] + margin <= lo[0] or hi[1] + margin <= a[1] or b[1] + margin <= lo[1]
               for a, b in taken)


def _placed(parts, yaw, t):
    return [(place(v, yaw, t), f) for v, f in parts]


def _try_place(rng, label, mode, size, taken, tries=30):
    """Places one piece of furniture (rejection sampling); returns (parts, yaw, centre) or None."""
    parts, (sx, sy) = FURNITURE[label](rng)
    for _ in range(tries):
        if mode == "wall":
            (ox, oy), (dx, dy), length, (nx, ny), yaw = _wall_frame(int(rng.integers(4)), size)
            if length < sx + 0.1:
                continue
            u = rng.uniform(sx / 2 + 0.05, length - sx / 2 - 0.05)
            c = (ox + dx * u + nx * (sy / 2 + GAP), oy + dy * u + ny * (sy / 2 + GAP), 0.0)
        else:
            yaw = rng.choice([0.0, np.pi / 2, np.pi, -np.pi / 2]) + rng.normal(0, 0.15)
            c = (rng.uniform(0.3, size[0] - 0.3), rng.uniform(0.3, size[1] - 0.3), 0.0)
        placed = _placed(parts, yaw, c)
        lo, hi = _aabb(placed)
        if _fits(lo, hi, size, taken):
            taken.append((lo, hi))
            return placed, yaw, np.asarray(c)
    return None


def layout_room(rng):
    """A random room. Returns (objects, size (W, L), height, scene type); objects as described above."""
    scene_type = list(ROOM_TYPES)[int(rng.integers(len(ROOM_TYPES)))]
    small = scene_type == "Bathroom"
    size = (rng.uniform(2.2, 3.5), rng.uniform(2.2, 3.5)) if small else (rng.uniform(3.5, 7.0), rng.uniform(3.5, 7.0))
    height = rng.uniform(2.4, 2.9)
    objects, taken = [], []
    openings = {w: [] for w in range(4)}

    def opening(label, width, z0, z1, depth):
        wall = int(rng.integers(4))
        (ox, oy), (dx, dy), length, (nx, ny), _ = _wall_frame(wall, size)
        for _ in range(20):
            u0 = rng.uniform(0.2, length - width - 0.2)
            if all(u0 + width + 0.1 < a or b + 0.1 < u0 for a, b, _, _ in openings[wall]):
                break
        else:
            return None
        openings[wall].append((u0, u0 + width, z0, z1))
        # the panel sits recessed ``depth`` behind the wall plane (door leaf, window glass and frame)
        p0 = (ox + dx * u0 - nx * depth, oy + dy * u0 - ny * depth, z0)
        objects.append({"label": label, "parts": [rectangle(p0, (width * dx, width * dy, 0), (0, 0, z1 - z0))]})
        return wall, u0, (ox, oy), (dx, dy), (nx, ny)

    door = opening("door", rng.uniform(0.8, 0.95), 0.0, rng.uniform(2.0, 2.15), 0.04)
    if door is not None:  # keep the doorway clear
        _, u0, (ox, oy), (dx, dy), (nx, ny) = door
        a = np.array([ox + dx * u0, oy + dy * u0])
        b = a + np.array([dx, dy]) * 0.95 + np.array([nx, ny]) * 0.9
        taken.append((np.minimum(a, b), np.maximum(a, b)))
    for _ in range(int(rng.integers(0, 3))):
        width = rng.uniform(0.7, 1.5)
        win = opening("window", width, 0.9, min(2.1, height - 0.2), 0.08)
        if win is not None and scene_type != "Bathroom" and rng.random() < 0.5:  # a curtain beside it
            _, u0, (ox, oy), (dx, dy), (nx, ny) = win
            cw = rng.uniform(0.3, 0.5)
            p0 = (ox + dx * (u0 - cw * 0.5) + nx * 0.1, oy + dy * (u0 - cw * 0.5) + ny * 0.1, 0.3)
            objects.append({"label": "curtain", "parts": [rectangle(p0, (cw * dx, cw * dy, 0), (0, 0, height - 0.4))]})
    for w in range(4):
        objects.append({"label": "wall", "parts": wall_parts(w, size, height, openings[w])})
    objects.append({"label": "floor", "parts": [rectangle((0, 0, 0), (size[0], 0, 0), (0, size[1], 0))]})
    for _ in range(int(rng.integers(0, 3))):  # pictures hang on walls, clear of the openings
        w = int(rng.integers(4))
        (ox, oy), (dx, dy), length, (nx, ny), _ = _wall_frame(w, size)
        pw, ph, u0 = rng.uniform(0.4, 1.0), rng.uniform(0.3, 0.8), rng.uniform(0.1, max(0.11, length - 1.1))
        if any(u0 < b + 0.05 and a < u0 + pw + 0.05 for a, b, _, _ in openings[w]):
            continue
        c = np.array([ox + dx * (u0 + pw / 2), oy + dy * (u0 + pw / 2)])
        a, b = c - np.array([dx, dy]) * pw / 2, c + np.array([dx, dy]) * pw / 2 + np.array([nx, ny]) * 0.02
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        objects.append({"label": "picture", "parts": [hexahedron(lo[0], hi[0], lo[1], hi[1], 1.3, 1.3 + ph)]})
    for label, lo_n, hi_n, mode in ROOM_TYPES[scene_type]:
        for _ in range(int(rng.integers(lo_n, hi_n + 1))):
            got = _try_place(rng, label, mode, size, taken)
            if got is None:
                continue
            parts, yaw, c = got
            # ~1 in 3 clutter boxes is left unannotated, as annotators skip small things
            objects.append({"label": None if label == "box" and rng.random() < 0.35 else label, "parts": parts,
                            "drop_bottom": True})
            objects.extend(_companions(rng, label, parts, yaw, c))
    return objects, size, height, scene_type


def _companions(rng, label, parts, yaw, c):
    """Objects that come with a piece of furniture: chairs at desks/tables, pillows, shower curtains."""
    out = []
    lo, hi = _aabb(parts)
    if label in ("desk", "table"):
        n = 1 if label == "desk" else int(rng.integers(2, 5))
        for k in range(n):
            build = office_chair if label == "desk" and rng.random() < 0.6 else chair
            chair_parts, _ = build(rng)
            side = 0 if label == "desk" else k % 2  # tables: chairs on both long sides
            extent = (hi - lo)[:2].max() if label == "table" else 0.0
            off_x = 0.0 if label == "desk" else (k // 2 - 0.5 * ((n - 1) // 2)) * 0.6
            # local desk/table frame: front is -y; chairs stand 0.25 m beyond the edge
            depth = 0.4 + (0.25 if label == "desk" else min(0.5, extent / 4))
            local = np.array([off_x, -depth if side == 0 else depth])
            cy, sy_ = np.cos(yaw), np.sin(yaw)
            pos = c[:2] + np.array([cy * local[0] - sy_ * local[1], sy_ * local[0] + cy * local[1]])
            cyaw = yaw + np.pi if side == 0 else yaw
            out.append({"label": "office chair" if build is office_chair else "chair",
                        "parts": _placed(chair_parts, cyaw + rng.normal(0, 0.2), (pos[0], pos[1], 0.0)),
                        "drop_bottom": True})
    elif label == "bed":
        v0 = parts[0][0]  # the base box: corners 0-1 span its width, 1-2 its length
        n = 2 if np.linalg.norm(v0[0] - v0[1]) > 1.2 else 1
        for k in range(n):
            x = 0.0 if n == 1 else (-0.35, 0.35)[k]
            v, f = ellipsoid((x, 0.75, 0.6), (0.3, 0.18, 0.08))  # at the head end (+y), on the mattress
            out.append({"label": "pillow", "parts": [(place(v, yaw, c), f)]})
    elif label == "bathtub":
        # a shower curtain hangs along the bathtub's front edge (local y = -sy / 2)
        v0 = parts[0][0]
        sx, sy = np.linalg.norm(v0[0] - v0[1]), np.linalg.norm(v0[1] - v0[2])
        p0 = place(np.array([[-sx / 2, -sy / 2 - 0.02, 0.6]]), yaw, c)[0]
        u = np.array([np.cos(yaw) * sx, np.sin(yaw) * sx, 0.0])
        out.append({"label": "shower curtain", "parts": [rectangle(p0, u, (0, 0, 1.4))]})
    return out
