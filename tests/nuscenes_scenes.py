"""Generated nuScenes-style scenes (GT + noisy, missing and extra predictions) for the metric tests."""
import numpy as np

from pc3d.evaluation.nuscenes_boxes import DETECTION_NAMES
from pc3d.evaluation.nuscenes_geometry import yaw_to_quaternion

# Rough w, l, h per class and the attributes a box of that class may carry.
SIZES = {"car": (1.9, 4.6, 1.7), "truck": (2.5, 7.0, 3.0), "bus": (2.9, 11.0, 3.5), "trailer": (2.9, 12.0, 3.9),
         "construction_vehicle": (2.8, 6.5, 3.2), "pedestrian": (0.7, 0.7, 1.8), "motorcycle": (0.8, 2.1, 1.5),
         "bicycle": (0.6, 1.7, 1.3), "traffic_cone": (0.4, 0.4, 1.0), "barrier": (2.5, 0.5, 1.0)}
ATTRS = {"car": ("vehicle.moving", "vehicle.parked", "vehicle.stopped"),
         "pedestrian": ("pedestrian.moving", "pedestrian.standing", "pedestrian.sitting_lying_down"),
         "motorcycle": ("cycle.with_rider", "cycle.without_rider"), "bicycle": ("cycle.with_rider", "cycle.without_rider")}
for _n in ("truck", "bus", "trailer", "construction_vehicle"):
    ATTRS[_n] = ATTRS["car"]


def _boxes(rng, names, centre, spread):
    m = len(names)
    size = np.array([SIZES[n] for n in names]) * rng.uniform(0.8, 1.2, (m, 3))
    xy = centre[:2] + rng.uniform(-spread, spread, (m, 2))
    z = centre[2] + rng.uniform(-1, 1, m)
    attrs = [ATTRS[n][rng.integers(len(ATTRS[n]))] if n in ATTRS and rng.random() > 0.1 else "" for n in names]
    return {"translation": np.column_stack([xy, z]), "size": size,
            "rotation": yaw_to_quaternion(rng.uniform(-np.pi, np.pi, m)),
            "velocity": rng.normal(0, 3, (m, 2)), "detection_name": list(names), "attribute_name": attrs}


def generate_scenes(seed, num_samples=6, gt_per_sample=40):
    """Returns (gt, pred, ego): GT with num_pts (some 0) and NaN velocities, predictions with noise,
    misses, duplicates, wrong classes, far-away FPs and tied scores."""
    rng = np.random.default_rng(seed)
    gt, pred, ego = {}, {}, {}
    for s in range(num_samples):
        token = f"sample{seed}_{s}"
        centre = np.array([rng.uniform(300, 1500), rng.uniform(300, 1500), 0.0])
        ego[token] = centre + np.array([0, 0, rng.uniform(-0.5, 0.5)])
        names = [DETECTION_NAMES[i] for i in rng.integers(0, 10, gt_per_sample)]
        g = _boxes(rng, names, centre, 55.0)
        g["velocity"][rng.random(gt_per_sample) < 0.1] = np.nan
        g["num_pts"] = np.where(rng.random(gt_per_sample) < 0.1, 0, rng.integers(1, 500, gt_per_sample))
        gt[token] = g
        keep = np.flatnonzero(rng.random(gt_per_sample) < 0.8)  # 20% missed
        dup = keep[rng.random(len(keep)) < 0.15]  # some GT predicted twice
        src = np.concatenate([keep, dup])
        k = len(src)
        p = {"translation": g["translation"][src] + rng.normal(0, 1.0, (k, 3)) * rng.uniform(0.05, 1.5, (k, 1)),
             "size": g["size"][src] * rng.uniform(0.7, 1.3, (k, 3)),
             "rotation": yaw_to_quaternion(rng.uniform(-np.pi, np.pi, k) * (rng.random(k) < 0.2)
                                           + np.arctan2(g["rotation"][src, 3], g["rotation"][src, 0]) * 2
                                           + rng.normal(0, 0.2, k)),
             "velocity": np.nan_to_num(g["velocity"][src]) + rng.normal(0, 1.0, (k, 2)),
             "detection_name": [g["detection_name"][i] for i in src],
             "attribute_name": [g["attribute_name"][i] if rng.random() < 0.7 else
                                ATTRS.get(g["detection_name"][i], ("",))[0] for i in src]}
        wrong = rng.random(k) < 0.05  # wrong class
        for i in np.flatnonzero(wrong):
            p["detection_name"][i] = DETECTION_NAMES[rng.integers(10)]
            p["attribute_name"][i] = ""
        extra = _boxes(rng, [DETECTION_NAMES[i] for i in rng.integers(0, 10, 12)], centre, 60.0)
        for key in p:
            p[key] = (list(p[key]) + list(extra[key])) if isinstance(p[key], list) else \
                np.concatenate([p[key], extra[key]])
        n = len(p["detection_name"])
        # Scores rounded to 2 decimals: many exact ties, which the official order breaks by box order.
        p["detection_score"] = np.round(rng.uniform(0.01, 1.0, n), 2)
        pred[token] = p
    return gt, pred, ego
