"""nuScenes annotations -> pc3d boxes in the keyframe LiDAR frame, with velocity, points and attributes.

A ``sample_annotation`` is a global-frame box: ``translation`` (centre), ``size`` [w, l, h],
``rotation`` [w, x, y, z]. In the LiDAR frame it becomes ``(x, y, z, dx, dy, dz, heading)`` with
``dx = l`` (along the heading), ``dy = w``, ``dz = h`` (``pc3d.geometry.nuscenes``).

Velocity is not stored: as the devkit's ``box_velocity`` does, it is the centre difference of the
instance's previous and next annotations over their samples' time (one-sided at the ends of a track,
NaN for a single annotation or a gap longer than 1.5 s, 3 s when centred); the global (vx, vy, 0) is
then rotated into the LiDAR frame (vz is ignored, as by the detection metric).

Classes: the 10 detection classes ``DETECTION_NAMES`` (label order) and the official general
category -> detection name mapping ``CATEGORY_TO_DETECTION``. Every other *known* nuScenes category
(animals, debris, strollers, wheelchairs, emergency vehicles, bicycle racks, ...) is explicitly ignored
(detection name ''); a category name that is not a nuScenes category at all is an error naming the file
and field, never silently dropped.
"""
from __future__ import annotations

import numpy as np

from pc3d.classes import NUSCENES_ATTRIBUTE_NAMES as ATTRIBUTE_NAMES
from pc3d.classes import NUSCENES_DETECTION_NAMES as DETECTION_NAMES
from pc3d.geometry.nuscenes import global_boxes_to_lidar

from .tables import NuScenesFormatError, NuScenesTables

CATEGORY_TO_DETECTION = {
    "movable_object.barrier": "barrier",
    "vehicle.bicycle": "bicycle",
    "vehicle.bus.bendy": "bus",
    "vehicle.bus.rigid": "bus",
    "vehicle.car": "car",
    "vehicle.construction": "construction_vehicle",
    "vehicle.motorcycle": "motorcycle",
    "human.pedestrian.adult": "pedestrian",
    "human.pedestrian.child": "pedestrian",
    "human.pedestrian.construction_worker": "pedestrian",
    "human.pedestrian.police_officer": "pedestrian",
    "movable_object.trafficcone": "traffic_cone",
    "vehicle.trailer": "trailer",
    "vehicle.truck": "truck",
}
# The other categories of the nuScenes v1.0 taxonomy (23 in all), and nuScenes-lidarseg's extra
# stuff classes that may appear in its category table: all known, none a detection class.
NON_DETECTION_CATEGORIES = (
    "animal", "human.pedestrian.personal_mobility", "human.pedestrian.stroller", "human.pedestrian.wheelchair",
    "movable_object.debris", "movable_object.pushable_pullable", "static_object.bicycle_rack",
    "vehicle.emergency.ambulance", "vehicle.emergency.police")
LIDARSEG_CATEGORIES = ("noise", "flat.driveable_surface", "flat.other", "flat.sidewalk", "flat.terrain",
                       "static.manmade", "static.other", "static.vegetation", "vehicle.ego")
IGNORED_CATEGORIES = NON_DETECTION_CATEGORIES + LIDARSEG_CATEGORIES
BIKE_RACK = "static_object.bicycle_rack"
MAX_VELOCITY_TIME_DIFF = 1.5  # seconds between the two annotations (doubled for a centred difference)


def detection_name(category: str, where: str = "") -> str:
    """The detection name of a nuScenes category, '' for an ignored one; unknown -> NuScenesFormatError."""
    if category in CATEGORY_TO_DETECTION:
        return CATEGORY_TO_DETECTION[category]
    if category in IGNORED_CATEGORIES:
        return ""
    raise NuScenesFormatError(f"{where}unknown nuScenes category {category!r} (not a detection category "
                              f"{sorted(CATEGORY_TO_DETECTION)} nor a known ignored one)")


def annotation_velocity(tables: NuScenesTables, ann: dict, sample_time: dict) -> np.ndarray:
    """(3,) float64 global velocity (m/s) of an annotation from its prev/next neighbours (NaN when unknown).

    ``sample_time``: {sample token: timestamp µs}.
    """
    prev, nxt = tables.field("sample_annotation", ann, "prev"), tables.field("sample_annotation", ann, "next")
    if not prev and not nxt:
        return np.full(3, np.nan)
    first = tables.get("sample_annotation", prev, ("sample_annotation", ann["token"], "prev")) if prev else ann
    last = tables.get("sample_annotation", nxt, ("sample_annotation", ann["token"], "next")) if nxt else ann
    dt = (sample_time[last["sample_token"]] - sample_time[first["sample_token"]]) * 1e-6
    limit = MAX_VELOCITY_TIME_DIFF * (2 if prev and nxt else 1)
    if dt > limit or dt <= 0:
        return np.full(3, np.nan)
    return (np.asarray(last["translation"], np.float64) - np.asarray(first["translation"], np.float64)) / dt


def sample_boxes(tables: NuScenesTables, sample: dict, lidar2global: np.ndarray, sample_time: dict) -> dict:
    """All annotations of one sample, in the sample's keyframe LiDAR frame.

    Args:
        lidar2global: (4, 4) float64 ``ego2global @ lidar2ego`` of the keyframe LIDAR_TOP scan.
        sample_time: {sample token: timestamp µs} (for velocities).
    Returns:
        dict (M annotations in table order): ``gt_boxes`` (M, 7) float64 [x, y, z, dx, dy, dz, heading];
        ``gt_velocity`` (M, 2) float64 [vx, vy] LiDAR frame (NaN unknown); ``gt_names`` (M,) detection names
        ('' = ignored category); ``categories``, ``gt_attributes`` (M,) str ('' none); ``num_lidar_pts``,
        ``num_radar_pts`` (M,) int64; ``ann_tokens``, ``instance_tokens`` (M,) str; ``bike_racks`` dict of
        global ``translation`` (R, 3), ``size`` (R, 3) [w, l, h], ``rotation`` (R, 4) of bicycle racks.
    """
    path = tables.path("sample_annotation")
    anns = tables.sample_anns[sample["token"]]
    cats, names, attrs, nl, nr, trans, size, rot, vel = [], [], [], [], [], [], [], [], []
    for ann in anns:
        inst = tables.link("sample_annotation", ann, "instance_token", "instance")
        cat = tables.link("instance", inst, "category_token", "category")
        cat_name = tables.field("category", cat, "name")
        names.append(detection_name(cat_name, f"{tables.path('category')}: record {cat['token']!r} field 'name': "))
        cats.append(cat_name)
        attr_tokens = tables.field("sample_annotation", ann, "attribute_tokens")
        if len(attr_tokens) > 1:
            raise NuScenesFormatError(f"{path}: record {ann['token']!r} field 'attribute_tokens' has "
                                      f"{len(attr_tokens)} attributes; at most one is allowed")
        attrs.append(_attribute(tables, ann, attr_tokens))
        for key, out in (("num_lidar_pts", nl), ("num_radar_pts", nr)):
            v = tables.field("sample_annotation", ann, key)
            if not isinstance(v, int) or v < -1:
                raise NuScenesFormatError(f"{path}: record {ann['token']!r} field {key!r} must be an int >= -1, "
                                          f"got {v!r}")
            out.append(v)
        t, s, r = _geometry(tables, ann)
        trans.append(t), size.append(s), rot.append(r)
        vel.append(annotation_velocity(tables, ann, sample_time)[:2])
    m = len(anns)
    trans, size, rot = (np.asarray(a, np.float64).reshape(m, k) for a, k in ((trans, 3), (size, 3), (rot, 4)))
    boxes = global_boxes_to_lidar(trans, size, rot, np.asarray(vel, np.float64).reshape(m, 2), lidar2global)
    rack = np.array([c == BIKE_RACK for c in cats], dtype=bool)
    return {
        "gt_boxes": boxes[:, :7], "gt_velocity": boxes[:, 7:9],
        "gt_names": np.array(names, dtype=object).reshape(m), "categories": np.array(cats, dtype=object).reshape(m),
        "gt_attributes": np.array(attrs, dtype=object).reshape(m),
        "num_lidar_pts": np.array(nl, np.int64).reshape(m), "num_radar_pts": np.array(nr, np.int64).reshape(m),
        "ann_tokens": np.array([a["token"] for a in anns], dtype=object).reshape(m),
        "instance_tokens": np.array([a["instance_token"] for a in anns], dtype=object).reshape(m),
        "bike_racks": {"translation": trans[rack], "size": size[rack], "rotation": rot[rack]},
    }


def _attribute(tables: NuScenesTables, ann: dict, attr_tokens: list) -> str:
    if not attr_tokens:
        return ""
    rec = tables.get("attribute", attr_tokens[0], ("sample_annotation", ann["token"], "attribute_tokens"))
    if rec["name"] not in ATTRIBUTE_NAMES:
        raise NuScenesFormatError(f"{tables.path('attribute')}: record {attr_tokens[0]!r} field 'name': "
                                  f"unknown attribute {rec['name']!r}")
    return rec["name"]


def _geometry(tables: NuScenesTables, ann: dict) -> tuple:
    """(translation (3,), size (3,), rotation (4,)) float64 of an annotation, validated."""
    t, s, r = (np.asarray(tables.field("sample_annotation", ann, k), np.float64)
               for k in ("translation", "size", "rotation"))
    if t.shape != (3,) or s.shape != (3,) or r.shape != (4,) or not (
            np.isfinite(t).all() and (s > 0).all() and np.isfinite(r).all() and np.linalg.norm(r) > 0):
        raise NuScenesFormatError(f"{tables.path('sample_annotation')}: record {ann['token']!r} fields 'translation' "
                                  f"(3,), 'size' (3,) > 0, 'rotation' (4,) non-zero are malformed: "
                                  f"{t.tolist()}, {s.tolist()}, {r.tolist()}")
    return t, s, r


def label_indices(names, classes=DETECTION_NAMES) -> np.ndarray:
    """(M,) int64 index of each detection name in ``classes`` (-1 for '' or a class not in ``classes``)."""
    lookup = {c: i for i, c in enumerate(classes)}
    return np.array([lookup.get(n, -1) for n in names], dtype=np.int64)
