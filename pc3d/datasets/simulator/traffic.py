"""Placement of the labelled objects: moving traffic, parked rows, lot parking, pedestrians, cyclists.

Positions are drawn in the road frame of ``scene.RoadLayout`` by a few behaviours per class; a
candidate is kept only when its BEV box clears every registered footprint (static structures, the
ego car, earlier objects), so objects never intersect while still occluding each other in the scan.
Returns label boxes ``(M, 7) float64 [u, v, z, dx, dy, dz, heading]`` (road frame, z = box centre),
classes ``(M,) int64`` and the shape parameters the mesh builders need.
"""
import numpy as np

from ..box_utils import wrap_heading
from .objects import CYCLIST, PEDESTRIAN, VEHICLE, sample_cyclist_size, sample_pedestrian_size, sample_vehicle_size

MAX_DIST = 72.0  # objects are placed within this BEV distance of the ego (some beyond 60 m are realistic)
TRIES = 25


def _near_ego(lay, u, v):
    return np.hypot(u, v - lay.ego_v) < MAX_DIST


def _vehicle_pose(lay, rng, mode, length, parked):
    """A (u, v, heading) for a vehicle of ``length`` in ``mode``, or None when the layout has no such
    place. ``parked`` lists (u, v, heading, length) of the kerb-parked vehicles so far: new ones often
    join a row behind or in front of one of them."""
    r0 = lay.lanes * lay.lane_width
    if mode == "moving":
        if lay.cross_u is not None and rng.random() < 0.3:  # cross-street traffic
            c0 = lay.cross_lanes * lay.cross_lane_width
            d = rng.choice([-1.0, 1.0])
            u = lay.cross_u + d * (rng.integers(lay.cross_lanes) + 0.5) * lay.cross_lane_width
            return u + rng.normal(0, 0.15), rng.uniform(-MAX_DIST, MAX_DIST), d * np.pi / 2 + rng.normal(0, 0.03)
        d = rng.choice([-1.0, 1.0])  # +u traffic drives on v < 0
        v = -d * (rng.integers(lay.lanes) + 0.5) * lay.lane_width
        return rng.uniform(-MAX_DIST, MAX_DIST), v + rng.normal(0, 0.15), (0.0 if d > 0 else np.pi) + rng.normal(0, 0.03)
    if mode == "turning":
        if lay.cross_u is None:
            return None
        c0 = lay.cross_lanes * lay.cross_lane_width
        return lay.cross_u + rng.uniform(-c0, c0), rng.uniform(-r0, r0), rng.uniform(-np.pi, np.pi)
    if mode == "parked":
        sides = [s for s, p in zip((1, -1), lay.parking) if p > 0]
        if not sides:
            return None
        if parked and rng.random() < 0.65:  # extend a row: bumper to bumper with a small gap
            u, v, heading, other = parked[rng.integers(len(parked))]
            gap = rng.uniform(0.4, 2.5)
            return u + rng.choice([-1.0, 1.0]) * (other / 2 + length / 2 + gap), v + rng.normal(0, 0.05), heading + rng.normal(0, 0.03)
        s = sides[rng.integers(len(sides))]
        p = lay.parking[0 if s > 0 else 1]
        heading = (np.pi if s > 0 else 0.0) + (np.pi if rng.random() < 0.15 else 0.0)
        return rng.uniform(-MAX_DIST, MAX_DIST), s * (r0 + p / 2) + rng.normal(0, 0.1), heading + rng.normal(0, 0.04)
    if mode == "lot":
        if not lay.lots:
            return None
        u0, u1, v0, v1 = lay.lots[rng.integers(len(lay.lots))]
        if rng.random() < 0.5:  # nose-in rows, either way round
            heading = np.pi / 2 + (np.pi if rng.random() < 0.5 else 0.0) + rng.normal(0, 0.08)
        else:
            heading = rng.uniform(-np.pi, np.pi)
        return rng.uniform(u0, u1), rng.uniform(v0, v1), heading
    raise ValueError(f"unknown vehicle mode {mode!r}")


def _vru_pose(lay, rng, cls, placed):
    """A (u, v, heading) for a pedestrian or cyclist (vulnerable road users)."""
    r0 = lay.lanes * lay.lane_width
    x = rng.random()
    if cls == CYCLIST:
        if x < 0.75:  # riding near the right edge of the carriageway, with the traffic
            d = rng.choice([-1.0, 1.0])
            return rng.uniform(-MAX_DIST, MAX_DIST), -d * (r0 - 0.8) + rng.normal(0, 0.2), (0.0 if d > 0 else np.pi) + rng.normal(0, 0.1)
        if x < 0.85 and lay.cross_u is not None:
            d = rng.choice([-1.0, 1.0])
            c0 = lay.cross_lanes * lay.cross_lane_width
            return lay.cross_u + d * (c0 - 0.8), rng.uniform(-MAX_DIST, MAX_DIST), d * np.pi / 2 + rng.normal(0, 0.1)
    elif x < 0.15:  # crossing the road, at the intersection's crosswalks when there is one
        if lay.cross_u is not None and rng.random() < 0.7:
            u = lay.cross_u + rng.choice([-1.0, 1.0]) * (lay.c()[1] + 1.5) + rng.normal(0, 0.5)
        else:
            u = rng.uniform(-MAX_DIST, MAX_DIST)
        return u, rng.uniform(-r0, r0), rng.choice([-1.0, 1.0]) * np.pi / 2 + rng.normal(0, 0.3)
    elif x < 0.3 and len(placed):  # walking in a group next to another pedestrian
        u, v, heading = placed[rng.integers(len(placed))]
        return u + rng.normal(0, 1.0), v + rng.normal(0, 1.0), heading + rng.normal(0, 0.2)
    elif x < 0.38 and lay.lots:
        u0, u1, v0, v1 = lay.lots[rng.integers(len(lay.lots))]
        return rng.uniform(u0, u1), rng.uniform(v0, v1), rng.uniform(-np.pi, np.pi)
    # on a sidewalk: along the street mostly, sometimes any direction
    s = rng.choice([-1.0, 1.0])
    _, r1, r2 = lay.r(s)
    heading = rng.choice([0.0, np.pi]) + rng.normal(0, 0.25) if rng.random() < 0.7 else rng.uniform(-np.pi, np.pi)
    return rng.uniform(-MAX_DIST, MAX_DIST), s * rng.uniform(r1 + 0.4, r2 - 0.4), heading


def place_objects(lay, foot, rng, counts):
    """Places ``counts`` = (vehicles, pedestrians, cyclists) objects (fewer if space runs out).

    Returns (boxes (M, 7) float64 road frame, labels (M,) int64, kinds list of str).
    """
    boxes, labels, kinds = [], [], []
    # The ego car occupies its own spot: nothing may be placed on top of the sensor.
    foot.add(np.array([0.0, lay.ego_v, 0, 5.2, 2.3, 1, 0]))
    modes = ["moving", "parked", "lot", "turning"]
    weights = np.array([0.42, 0.38, 0.15, 0.05])
    peds, parked = [], []
    for cls, n in zip((VEHICLE, PEDESTRIAN, CYCLIST), counts):
        for _ in range(n):
            if cls == VEHICLE:
                kind, size = sample_vehicle_size(rng)
            elif cls == PEDESTRIAN:
                kind, size = "pedestrian", sample_pedestrian_size(rng)
            else:
                kind, size = "cyclist", sample_cyclist_size(rng)
            for _ in range(TRIES):
                if cls == VEHICLE:
                    mode = modes[rng.choice(4, p=weights)]
                    pose = _vehicle_pose(lay, rng, mode, size[0], parked)
                else:
                    pose = _vru_pose(lay, rng, cls, peds)
                if pose is None:
                    continue
                u, v, heading = (float(p) for p in pose)
                if not _near_ego(lay, u, v):
                    continue
                lvl = lay.level(np.array([u]), np.array([v]))[0]
                if cls == VEHICLE and lvl == 1:
                    continue  # vehicles stay off the sidewalks
                box = np.array([u, v, 0.0, size[0], size[1], size[2], wrap_heading(heading)])
                if not foot.free(box, 0.3 if cls == VEHICLE else 0.1):
                    continue
                box[2] = lay.surface(np.array([u]), np.array([v]))[0] + size[2] / 2
                foot.add(box)
                boxes.append(box)
                labels.append(cls)
                kinds.append(kind)
                if cls == PEDESTRIAN:
                    peds.append((u, v, heading))
                elif cls == VEHICLE and mode == "parked":
                    parked.append((u, v, heading, size[0]))
                break
    return np.array(boxes, dtype=np.float64).reshape(-1, 7), np.array(labels, dtype=np.int64), kinds
