"""nuScenes detection results: pc3d LiDAR detections -> global box fields -> official submission JSON.

The submission file (what the nuScenes evaluation server and ``nuscenes-devkit`` read) is::

    {"meta": {"use_camera": false, "use_lidar": true, "use_radar": false, "use_map": false,
              "use_external": false},
     "results": {sample_token: [{"sample_token", "translation" [x, y, z], "size" [w, l, h],
                                 "rotation" [w, x, y, z], "velocity" [vx, vy], "detection_name",
                                 "detection_score", "attribute_name"}, ...], ...}}

every box in the global frame, at most 500 boxes per sample, every evaluated sample present.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .nuscenes_boxes import ATTRIBUTE_NAMES, DETECTION_NAMES
from pc3d.geometry.nuscenes import lidar_boxes_to_global

DEFAULT_META = {"use_camera": False, "use_lidar": True, "use_radar": False, "use_map": False, "use_external": False}

_VEHICLES = ("car", "truck", "bus", "trailer", "construction_vehicle")
_CYCLES = ("motorcycle", "bicycle")


def default_attributes(names: Sequence[str], velocity: np.ndarray, moving_speed: float = 0.2) -> list:
    """Attribute names for a detector without an attribute head, from the class and the speed.

    A vehicle is ``vehicle.moving`` above ``moving_speed`` m/s else ``vehicle.parked``; a pedestrian
    ``pedestrian.moving`` / ``pedestrian.standing``; a cycle ``cycle.with_rider`` /
    ``cycle.without_rider``; cones and barriers have none (''). This is a heuristic, not a prediction.

    Args:
        names: (M,) detection names. velocity: (M, 2) float vx, vy (m/s).
    Returns:
        list of M attribute names.
    """
    speed = np.hypot(*np.asarray(velocity, dtype=np.float64).reshape(-1, 2).T) if len(names) else np.zeros(0)
    out = []
    for name, v in zip(names, speed):
        moving = bool(v > moving_speed)
        if name in _VEHICLES:
            out.append("vehicle.moving" if moving else "vehicle.parked")
        elif name == "pedestrian":
            out.append("pedestrian.moving" if moving else "pedestrian.standing")
        elif name in _CYCLES:
            out.append("cycle.with_rider" if moving else "cycle.without_rider")
        else:
            out.append("")
    return out


def lidar_detections_to_fields(boxes, scores, labels, lidar2global, class_names: Sequence[str] = DETECTION_NAMES,
                               attributes: Sequence[str] | None = None, max_boxes: int | None = None) -> dict:
    """One sample's pc3d detections -> the global-frame box fields of a box set.

    Args:
        boxes: (K, 9) float [x, y, z, dx, dy, dz, heading, vx, vy] LiDAR frame (or (K, 7), velocity 0).
        scores: (K,) float. labels: (K,) int index into ``class_names`` (each a nuScenes detection name).
        lidar2global: (4, 4) float ``ego2global @ lidar2ego``.
        attributes: (K,) attribute names; None -> ``default_attributes``.
        max_boxes: keep only the ``max_boxes`` highest-scoring boxes (the official limit is 500).
    Returns:
        dict of translation (K', 3), size (K', 3), rotation (K', 4), velocity (K', 2), detection_name,
        detection_score (K',), attribute_name.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 9)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    if not (len(boxes) == len(scores) == len(labels)):
        raise ValueError(f"boxes, scores, labels disagree in length: {len(boxes)}, {len(scores)}, {len(labels)}")
    bad = (labels < 0) | (labels >= len(class_names))
    if bad.any():
        raise ValueError(f"labels must be in [0, {len(class_names)}), got {labels[bad][0]}")
    unknown = [n for n in class_names if n not in DETECTION_NAMES]
    if unknown:
        raise ValueError(f"class_names has names that are not nuScenes detection names: {unknown}")
    order = np.argsort(-scores, kind="stable")
    if max_boxes is not None:
        order = order[:max_boxes]
    fields = lidar_boxes_to_global(boxes[order], lidar2global)
    names = [class_names[i] for i in labels[order]]
    if attributes is None:
        attrs = default_attributes(names, fields["velocity"])
    else:
        attrs = [attributes[i] for i in order]
    fields.update(detection_name=names, detection_score=scores[order], attribute_name=attrs)
    return fields


def fields_to_records(token: str, fields: Mapping) -> list:
    """Box fields of one sample -> the official list of result records (plain Python types)."""
    n = len(fields["detection_name"])
    attrs = fields.get("attribute_name", [""] * n)
    return [{
        "sample_token": token,
        "translation": [float(v) for v in fields["translation"][i]],
        "size": [float(v) for v in fields["size"][i]],
        "rotation": [float(v) for v in fields["rotation"][i]],
        "velocity": [float(v) for v in fields["velocity"][i]],
        "detection_name": str(fields["detection_name"][i]),
        "detection_score": float(fields["detection_score"][i]),
        "attribute_name": str(attrs[i]),
    } for i in range(n)]


def write_submission(path, results: Mapping[str, object], meta: Mapping | None = None,
                     max_boxes_per_sample: int = 500) -> Path:
    """Write predictions as an official submission JSON.

    Args:
        path: output file. results: ``sample_token -> box fields`` (see ``nuscenes_boxes``) or record list.
        meta: the ``meta`` block; default lidar-only ``DEFAULT_META``.
    Returns:
        the path written.
    """
    out = {}
    for token, fields in results.items():
        recs = list(fields) if isinstance(fields, (list, tuple)) else fields_to_records(token, fields)
        if len(recs) > max_boxes_per_sample:
            raise ValueError(f"sample {token!r} has {len(recs)} boxes; the limit is {max_boxes_per_sample}")
        for i, r in enumerate(recs):
            if r["detection_name"] not in DETECTION_NAMES:
                raise ValueError(f"sample {token!r} box {i}: unknown detection_name {r['detection_name']!r}")
            if r["attribute_name"] not in ATTRIBUTE_NAMES + ("",):
                raise ValueError(f"sample {token!r} box {i}: unknown attribute_name {r['attribute_name']!r}")
            vals = r["translation"] + r["size"] + r["rotation"] + r["velocity"] + [r["detection_score"]]
            if not np.all(np.isfinite(vals)):
                raise ValueError(f"sample {token!r} box {i}: non-finite value in {r}")
        out[token] = recs
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        json.dump({"meta": dict(DEFAULT_META if meta is None else meta), "results": out}, f)
    return path


def load_submission(path) -> tuple[dict, dict]:
    """Read a submission JSON -> (``sample_token -> record list``, meta)."""
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, dict) or "results" not in data or "meta" not in data:
        raise ValueError(f"{path}: a nuScenes submission needs top-level 'meta' and 'results'")
    if not isinstance(data["results"], dict):
        raise ValueError(f"{path}: 'results' must map sample_token -> list of boxes")
    return data["results"], data["meta"]
