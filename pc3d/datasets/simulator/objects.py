"""The three labelled object classes: size distributions and low-poly shapes that fill their boxes.

Shapes are object-like rather than boxes so that a detector has something real to learn: a vehicle is
wheels + a body + a tapered glass cabin (vans and trucks differ in proportions), a pedestrian is legs,
arms, an elliptical torso and a head, a cyclist is two thin wheels, a frame and a leaning rider. Every
shape lies inside its label box ``(x, y, z, dx, dy, dz, heading)``; the object's +x is its heading.

Size statistics follow the public Waymo label statistics approximately (cars ~4.5 x 1.9 x 1.6 m,
pedestrians ~0.85 x 0.8 x 1.75 m, cyclists ~1.8 x 0.8 x 1.7 m).
"""
import numpy as np

from .meshes import HEX_FRONT_FACES, HEX_TOP_FACES, cylinder, ellipsoid, hexahedron, place

VEHICLE, PEDESTRIAN, CYCLIST = 0, 1, 2

# kind: (probability, mean (l, w, h), std (l, w, h))
VEHICLE_KINDS = {
    "car": (0.58, (4.5, 1.9, 1.55), (0.30, 0.08, 0.08)),
    "suv": (0.22, (4.8, 2.0, 1.80), (0.25, 0.08, 0.08)),
    "van": (0.10, (5.3, 2.05, 2.25), (0.35, 0.08, 0.12)),
    "truck": (0.07, (9.0, 2.5, 3.4), (1.50, 0.08, 0.25)),
    "bus": (0.03, (12.0, 2.55, 3.2), (0.60, 0.05, 0.10)),
}
GLASS_REFLECTIVITY, GLASS_DROPOUT = 0.05, 0.45  # LiDAR light mostly passes through windows
TYRE_REFLECTIVITY = 0.03


def sample_vehicle_size(rng):
    """Returns (kind str, (l, w, h) floats) drawn from the vehicle mixture."""
    names = list(VEHICLE_KINDS)
    probs = np.array([VEHICLE_KINDS[k][0] for k in names])
    kind = names[rng.choice(len(names), p=probs / probs.sum())]
    _, mean, std = VEHICLE_KINDS[kind]
    size = np.asarray(mean) + rng.standard_normal(3) * np.asarray(std)
    return kind, tuple(np.maximum(size, np.asarray(mean) * 0.7))


def sample_pedestrian_size(rng):
    h = float(np.clip(rng.normal(1.74, 0.09), 1.45, 1.98))
    return (float(np.clip(rng.normal(0.85, 0.12), 0.6, 1.2)), float(np.clip(rng.normal(0.80, 0.08), 0.62, 1.05)), h)


def sample_cyclist_size(rng):
    return (float(np.clip(rng.normal(1.80, 0.10), 1.55, 2.05)), float(np.clip(rng.normal(0.80, 0.06), 0.62, 0.95)),
            float(np.clip(rng.normal(1.72, 0.07), 1.5, 1.95)))


def _add_parts(builder, parts, box, object_id):
    """Places local parts [(verts, faces, reflectivity, dropout, retro)] at ``box`` and adds them."""
    x, y, z, _, _, h, yaw = box
    for v, f, refl, drop, retro in parts:
        builder.add(place(v, yaw, (x, y, z - h / 2)), f, refl, drop, retro, object_id)


def _wheels(xs, half_track, radius, width, refl=TYRE_REFLECTIVITY):
    parts = []
    for wx in xs:
        for sy in (-1.0, 1.0):
            yc = sy * (half_track - width / 2)
            v, f = cylinder((wx, yc - width / 2, radius), (wx, yc + width / 2, radius), radius, 8)
            parts.append((v, f, refl, 0.0, False))
    return parts


def _plate(x, width=0.52, z=0.45):
    """A retro-reflective licence plate on the face at longitudinal position ``x``."""
    d = 0.02 * np.sign(x)
    v, f = hexahedron(min(x, x + d), max(x, x + d), -width / 2, width / 2, z, z + 0.12)
    return (v, f, 0.85, 0.0, True)


def _windscreen(paint):
    """Per-face reflectivity (12,) of a hexahedron painted all over except its front (+x) face, glass."""
    refl = np.full(12, paint, dtype=np.float32)
    refl[HEX_FRONT_FACES] = GLASS_REFLECTIVITY
    return refl


def add_vehicle(builder, box, kind, rng, object_id):
    """Adds a vehicle filling ``box`` (7,) [x, y, z, l, w, h, heading] to ``builder``."""
    _, _, _, l, w, h, _ = box
    paint = float(rng.uniform(0.08, 0.75))  # dark to white/silver paint
    hl, hw = l / 2, w / 2
    r = min(0.36 * h / 1.6, 0.55) if kind in ("car", "suv", "van") else 0.5
    parts = []
    glass = np.full(12, GLASS_REFLECTIVITY, dtype=np.float32)
    glass[HEX_TOP_FACES] = paint
    glass_drop = np.full(12, GLASS_DROPOUT, dtype=np.float32)
    glass_drop[HEX_TOP_FACES] = 0.0
    if kind in ("car", "suv"):
        parts += _wheels((hl - 0.95 * l / 4.5, -hl + 0.95 * l / 4.5), hw - 0.05, r, 0.22)
        belt = 0.58 * h
        v, f = hexahedron(-hl, hl, -hw, hw, 0.6 * r, belt, top_x=(-hl + 0.05, hl - 0.15))
        parts.append((v, f, paint, 0.0, False))
        cab = (-hl + 0.12 * l, hl - 0.3 * l) if kind == "car" else (-hl + 0.03 * l, hl - 0.3 * l)
        top = (cab[0] + 0.12 * l, cab[1] - 0.16 * l) if kind == "car" else (cab[0] + 0.02 * l, cab[1] - 0.12 * l)
        v, f = hexahedron(cab[0], cab[1], -hw + 0.06, hw - 0.06, belt, h, top_x=top, top_y=(-hw + 0.2, hw - 0.2))
        parts.append((v, f, glass, glass_drop, False))
        parts += [_plate(hl), _plate(-hl)]
    elif kind == "van":
        parts += _wheels((hl - 0.9, -hl + 1.0), hw - 0.05, r, 0.22)
        v, f = hexahedron(-hl, hl, -hw, hw, 0.6 * r, 0.5 * h)
        parts.append((v, f, paint, 0.0, False))
        v, f = hexahedron(-hl, hl - 0.9, -hw, hw, 0.5 * h, h, top_x=(-hl, hl - 1.5))
        parts.append((v, f, _windscreen(paint), 0.0, False))
        parts += [_plate(hl), _plate(-hl)]
    else:  # truck / bus: a long box on several axles; trucks get a separate cab in front
        axles = (hl - 1.3, -hl + 1.5, -hl + 2.9) if kind == "truck" else (hl - 2.6, -hl + 3.0)
        parts += _wheels(axles, hw - 0.05, r, 0.3)
        if kind == "truck":
            v, f = hexahedron(hl - 2.3, hl, -hw + 0.05, hw - 0.05, 0.8 * r, 0.8 * h, top_x=(hl - 2.3, hl - 0.3))
            parts.append((v, f, _windscreen(paint), 0.0, False))
            v, f = hexahedron(-hl, hl - 2.45, -hw, hw, 1.6 * r, h)
            parts.append((v, f, float(rng.uniform(0.3, 0.8)), 0.0, False))
        else:
            v, f = hexahedron(-hl, hl, -hw, hw, 0.6 * r, 0.5 * h)
            parts.append((v, f, paint, 0.0, False))
            v, f = hexahedron(-hl, hl, -hw, hw, 0.5 * h, h)
            parts.append((v, f, glass, glass_drop * 0.6, False))
        parts.append(_plate(-hl))
    _add_parts(builder, parts, box, object_id)


def _person_parts(rng, h, half_w, base_x=0.0, stride=0.0, swing=0.0, clothes=0.3):
    """A standing/walking person of height ``h`` centred at x = ``base_x`` (local frame, feet z = 0)."""
    skin = 0.3
    hip, shoulder = 0.48 * h, 0.8 * h
    leg_y = min(0.1, half_w - 0.1)
    arm_y = half_w - 0.07
    parts = []
    for sy, sx in ((-1, 1), (1, -1)):
        v, f = cylinder((base_x + sx * stride / 2, sy * leg_y, 0.0), (base_x, sy * leg_y, hip), 0.075, 6)
        parts.append((v, f, clothes * 0.8, 0.0, False))
        v, f = cylinder((base_x, sy * arm_y, shoulder), (base_x - sx * swing, sy * arm_y, 0.45 * h), 0.05, 6)
        parts.append((v, f, clothes, 0.0, False))
    v, f = cylinder((base_x, 0, hip - 0.05), (base_x, 0, shoulder + 0.04), 0.13, 8, radius_y=min(0.2, half_w - 0.12))
    parts.append((v, f, clothes, 0.0, False))
    v, f = ellipsoid((base_x, 0.0, h - 0.115), (0.1, 0.09, 0.115))
    parts.append((v, f, skin, 0.0, False))
    return parts


def add_pedestrian(builder, box, rng, object_id):
    """Adds a walking or standing pedestrian filling ``box`` (7,) to ``builder``."""
    _, _, _, l, w, h, _ = box
    reach = l / 2 - 0.09  # stride and arm swing must stay inside the box
    stride = float(rng.uniform(0.0, 1.0)) * min(0.7, 2 * reach)
    swing = float(rng.uniform(0.0, 1.0)) * min(0.3, reach)
    clothes = float(rng.uniform(0.08, 0.55))
    _add_parts(builder, _person_parts(rng, h, w / 2, 0.0, stride, swing, clothes), box, object_id)


def add_cyclist(builder, box, rng, object_id):
    """Adds a bicycle with its rider filling ``box`` (7,) to ``builder``."""
    _, _, _, l, w, h, _ = box
    hl = l / 2
    r = min(0.34, hl / 2.6)
    metal = float(rng.uniform(0.2, 0.5))
    parts = []
    rear, front = -hl + r, hl - r
    for wx in (rear, front):
        v, f = cylinder((wx, -0.025, r), (wx, 0.025, r), r, 10)
        parts.append((v, f, 0.1, 0.3, False))  # spoked wheels: sparse returns
    seat = (-0.15 * l, 0.0, 0.46 * h)
    bar = (front - 0.12, 0.0, 0.55 * h)
    crank = (0.0, 0.0, r)
    for a, b in (((rear, 0, r), seat), (seat, crank), (crank, bar), (seat, bar), ((front, 0, r), bar), ((rear, 0, r), crank)):
        v, f = cylinder(a, b, 0.025, 5)
        parts.append((v, f, metal, 0.0, False))
    hw = min(0.3, w / 2 - 0.02)
    v, f = cylinder((bar[0], -hw, bar[2] + 0.03), (bar[0], hw, bar[2] + 0.03), 0.02, 5)
    parts.append((v, f, metal, 0.0, False))
    clothes = float(rng.uniform(0.08, 0.55))
    hip = (seat[0], 0.0, seat[2] + 0.05)
    shoulder = (seat[0] + 0.3 * (h / 1.72), 0.0, h - 0.3)
    v, f = cylinder(hip, shoulder, 0.13, 8, radius_y=min(0.19, w / 2 - 0.1))
    parts.append((v, f, clothes, 0.0, False))
    for sy in (-1.0, 1.0):
        pedal = (crank[0] + sy * 0.12, sy * 0.12, crank[2] + sy * 0.1)
        v, f = cylinder((hip[0], sy * 0.1, hip[2]), pedal, 0.07, 6)
        parts.append((v, f, clothes * 0.8, 0.0, False))
        v, f = cylinder((shoulder[0], sy * (w / 2 - 0.08), shoulder[2]), (bar[0] - 0.05, sy * hw * 0.9, bar[2] + 0.05), 0.045, 6)
        parts.append((v, f, clothes, 0.0, False))
    v, f = ellipsoid((shoulder[0] + 0.05, 0.0, h - 0.12), (0.11, 0.1, 0.12))  # head (helmet)
    parts.append((v, f, float(rng.uniform(0.2, 0.6)), 0.0, False))
    _add_parts(builder, parts, box, object_id)
