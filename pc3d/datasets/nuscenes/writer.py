"""Writes a small dataset in the nuScenes layout (all 13 tables, keyframe and sweep ``.pcd.bin`` files).

Layout under ``root``: ``<version>/<table>.json`` for the 13 tables, ``samples/LIDAR_TOP/*.pcd.bin``
(keyframes), ``sweeps/LIDAR_TOP/*.pcd.bin`` (the scans between keyframes), ``maps/<token>.png`` (a
1-pixel semantic map, so that nuscenes-devkit opens the dataset). Tokens are md5 hex strings of
readable keys, so the same input gives the same files.

Input: a list of scenes, each a dict with ``name`` str (e.g. ``scene-0103``), optional ``location``, and
``frames`` in time order, each a dict:

- ``timestamp`` int µs; ``ego2global`` (4, 4) float; ``is_key_frame`` bool;
- ``points`` (N, 5) float32 [x, y, z, intensity, ring] in the LiDAR frame of that scan;
- keyframes only, ``annotations`` dict of (M,) fields: ``instance_ids`` int (an object's id within the
  scene), ``categories`` str (nuScenes category names), ``boxes`` (M, 7) float global
  [x, y, z, dx, dy, dz, yaw] (box centre, dx along the heading), ``attributes`` str ('' none), optional
  ``num_lidar_pts`` (default: keyframe points inside the box) and ``num_radar_pts`` (default 0).

A sweep belongs to the next keyframe's sample (the previous one after the last keyframe).
"""
from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path

import numpy as np

from pc3d.classes import NUSCENES_ATTRIBUTE_NAMES as ATTRIBUTE_NAMES

from .boxes import CATEGORY_TO_DETECTION, NON_DETECTION_CATEGORIES
from .poses import matrix_to_record, pose_matrix, transform_points

CHANNEL = "LIDAR_TOP"
CATEGORIES = tuple(sorted(set(CATEGORY_TO_DETECTION) | set(NON_DETECTION_CATEGORIES)))  # the 23 of v1.0
VISIBILITY = (("1", "v0-40"), ("2", "v40-60"), ("3", "v60-80"), ("4", "v80-100"))


def _rot(yaw=0.0, pitch=0.0, roll=0.0) -> np.ndarray:
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    return rz @ ry @ rx


def rigid(translation=(0.0, 0.0, 0.0), yaw=0.0, pitch=0.0, roll=0.0) -> np.ndarray:
    """(4, 4) float64 transform: rotation Rz(yaw) Ry(pitch) Rx(roll), then ``translation``."""
    m = np.eye(4)
    m[:3, :3] = _rot(yaw, pitch, roll)
    m[:3, 3] = translation
    return m


# nuScenes-like LIDAR_TOP mounting: on the roof, x to the right of the car (yaw -90 deg), slightly tilted.
DEFAULT_LIDAR2EGO = rigid((0.94, 0.0, 1.84), yaw=-np.pi / 2, pitch=0.01, roll=-0.015)


def token(*key) -> str:
    """Deterministic 32-hex-digit token of a key."""
    return hashlib.md5("/".join(str(k) for k in key).encode()).hexdigest()


def _png_1x1(path: Path):
    """A valid 1x1 8-bit grayscale PNG (the devkit only checks that the map file exists)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    raw += chunk(b"IDAT", zlib.compress(b"\x00\xff")) + chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)


def _check_annotations(scene: str, i: int, ann: dict) -> int:
    where = f"scene {scene!r} frame {i} annotations"
    boxes = np.asarray(ann["boxes"], dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 7 or not np.isfinite(boxes).all() or (boxes[:, 3:6] <= 0).any():
        raise ValueError(f"{where}: field 'boxes' must be finite (M, 7) with positive sizes, got shape {boxes.shape}")
    m = len(boxes)
    for key in ("instance_ids", "categories", "attributes", "num_lidar_pts", "num_radar_pts"):
        if key in ann and len(ann[key]) != m:
            raise ValueError(f"{where}: field {key!r} has {len(ann[key])} entries but 'boxes' has {m}")
    for key in ("instance_ids", "categories", "attributes"):
        if key not in ann:
            raise ValueError(f"{where}: missing field {key!r}")
    bad = [c for c in ann["categories"] if c not in CATEGORIES]
    if bad:
        raise ValueError(f"{where}: field 'categories' has names that are not nuScenes categories: {bad[:3]}")
    bad = [a for a in ann["attributes"] if a and a not in ATTRIBUTE_NAMES]
    if bad:
        raise ValueError(f"{where}: field 'attributes' has unknown attribute names: {bad[:3]}")
    if len(set(int(k) for k in ann["instance_ids"])) != m:
        raise ValueError(f"{where}: field 'instance_ids' repeats an id within one keyframe")
    return m


def _count_points(points: np.ndarray, lidar2global: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(M,) int64 keyframe points inside each upright global box (points moved into the global frame)."""
    from ..box_utils import points_in_boxes_indices

    pts = transform_points(np.asarray(points)[:, :3], lidar2global)
    return np.array([len(i) for i in points_in_boxes_indices(pts, boxes)], dtype=np.int64)


def write_nuscenes(root, scenes: list, version: str = "v1.0-mini", lidar2ego: np.ndarray = DEFAULT_LIDAR2EGO) -> Path:
    """Writes ``scenes`` (see the module docstring) as a nuScenes dataset under ``root``; returns the table folder."""
    root = Path(root)
    t = {name: [] for name in ("category", "attribute", "visibility", "instance", "sensor", "calibrated_sensor",
                               "ego_pose", "log", "scene", "sample", "sample_data", "sample_annotation", "map")}
    cat_tok = {c: token("category", c) for c in CATEGORIES}
    t["category"] = [{"token": cat_tok[c], "name": c, "description": f"nuScenes category {c}"} for c in CATEGORIES]
    attr_tok = {a: token("attribute", a) for a in ATTRIBUTE_NAMES}
    t["attribute"] = [{"token": attr_tok[a], "name": a, "description": ""} for a in ATTRIBUTE_NAMES]
    t["visibility"] = [{"token": k, "level": lvl, "description": f"visibility {lvl}"} for k, lvl in VISIBILITY]
    sensor = token("sensor", CHANNEL)
    t["sensor"] = [{"token": sensor, "channel": CHANNEL, "modality": "lidar"}]
    l2e_t, l2e_r = matrix_to_record(lidar2ego)
    l2e = pose_matrix(l2e_t, l2e_r)  # exactly what a reader rebuilds from the record
    map_token = token("map")
    for scene in scenes:
        _write_scene(root, t, scene, l2e_t, l2e_r, l2e, cat_tok, attr_tok, sensor)
    t["map"] = [{"token": map_token, "log_tokens": [lg["token"] for lg in t["log"]], "category": "semantic_prior",
                 "filename": f"maps/{map_token}.png"}]
    _png_1x1(root / "maps" / f"{map_token}.png")
    table_root = root / version
    table_root.mkdir(parents=True, exist_ok=True)
    for name, records in t.items():
        with open(table_root / f"{name}.json", "w") as f:
            json.dump(records, f, indent=0)
    return table_root


def _write_scene(root, t, scene, l2e_t, l2e_r, l2e, cat_tok, attr_tok, sensor):
    name = scene["name"]
    frames = scene["frames"]
    keys = [i for i, f in enumerate(frames) if f["is_key_frame"]]
    if not keys:
        raise ValueError(f"scene {name!r}: field 'frames' has no keyframe")
    stamps = [int(f["timestamp"]) for f in frames]
    if any(b <= a for a, b in zip(stamps, stamps[1:])):
        raise ValueError(f"scene {name!r}: frame field 'timestamp' must strictly increase, got {stamps}")
    log = token("log", name)
    logfile = f"sim-{name}"
    t["log"].append({"token": log, "logfile": logfile, "vehicle": "pc3d-sim", "date_captured": "2024-01-01",
                     "location": scene.get("location", "pc3d-simulated")})
    cs = token("calibrated_sensor", name)
    t["calibrated_sensor"].append({"token": cs, "sensor_token": sensor, "translation": l2e_t, "rotation": l2e_r,
                                   "camera_intrinsic": []})
    samples = [token("sample", name, i) for i in keys]
    scene_tok = token("scene", name)
    for j, (i, s) in enumerate(zip(keys, samples)):
        t["sample"].append({"token": s, "timestamp": stamps[i], "scene_token": scene_tok,
                            "prev": samples[j - 1] if j else "", "next": samples[j + 1] if j + 1 < len(keys) else ""})
    t["scene"].append({"token": scene_tok, "log_token": log, "nbr_samples": len(keys), "first_sample_token": samples[0],
                       "last_sample_token": samples[-1], "name": name, "description": "pc3d simulated scene"})
    sd = [token("sample_data", name, i) for i in range(len(frames))]
    owner = np.searchsorted(keys, np.arange(len(frames)))  # index of the next keyframe
    tracks = {}  # instance id -> list of annotation tokens in time order
    for i, frame in enumerate(frames):
        pts = np.ascontiguousarray(frame["points"], dtype=np.float32)
        if pts.ndim != 2 or pts.shape[1] != 5:
            raise ValueError(f"scene {name!r} frame {i}: field 'points' must be (N, 5) [x, y, z, intensity, ring], "
                             f"got {pts.shape}")
        key = bool(frame["is_key_frame"])
        rel = f"{'samples' if key else 'sweeps'}/{CHANNEL}/{logfile}__{CHANNEL}__{stamps[i]}.pcd.bin"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        pts.tofile(root / rel)
        e2g = np.asarray(frame["ego2global"], dtype=np.float64)
        e_t, e_r = matrix_to_record(e2g)
        t["ego_pose"].append({"token": sd[i], "timestamp": stamps[i], "translation": e_t, "rotation": e_r})
        t["sample_data"].append({
            "token": sd[i], "sample_token": samples[min(owner[i], len(keys) - 1)], "ego_pose_token": sd[i],
            "calibrated_sensor_token": cs, "timestamp": stamps[i], "fileformat": "pcd", "is_key_frame": key,
            "height": 0, "width": 0, "filename": rel, "prev": sd[i - 1] if i else "",
            "next": sd[i + 1] if i + 1 < len(frames) else ""})
        if key:
            _add_annotations(t, name, i, frame, samples[keys.index(i)], pose_matrix(e_t, e_r) @ l2e, tracks, attr_tok)
    _link_tracks(t, name, tracks, cat_tok)


def _add_annotations(t, name, i, frame, sample, lidar2global, tracks, attr_tok):
    ann = frame.get("annotations") or {"boxes": np.zeros((0, 7)), "instance_ids": [], "categories": [],
                                       "attributes": []}
    m = _check_annotations(name, i, ann)
    boxes = np.asarray(ann["boxes"], dtype=np.float64)
    n_lidar = (np.asarray(ann["num_lidar_pts"], np.int64) if "num_lidar_pts" in ann
               else _count_points(frame["points"], lidar2global, boxes))
    n_radar = np.asarray(ann.get("num_radar_pts", np.zeros(m)), np.int64)
    for k in range(m):
        inst = int(ann["instance_ids"][k])
        tok = token("sample_annotation", name, i, inst)
        cat = ann["categories"][k]
        if inst not in tracks:
            tracks[inst] = {"category": cat, "anns": []}  # annotation records in time order
        elif tracks[inst]["category"] != cat:
            raise ValueError(f"scene {name!r} frame {i} annotations: field 'categories' changes the category of "
                             f"instance {inst} from {tracks[inst]['category']!r} to {cat!r}")
        b = boxes[k]
        rec = {
            "token": tok, "sample_token": sample, "instance_token": token("instance", name, inst),
            "visibility_token": "4",
            "attribute_tokens": [attr_tok[ann["attributes"][k]]] if ann["attributes"][k] else [],
            "translation": b[:3].tolist(), "size": [b[4], b[3], b[5]],
            "rotation": [float(np.cos(b[6] / 2)), 0.0, 0.0, float(np.sin(b[6] / 2))],
            "prev": "", "next": "", "num_lidar_pts": int(n_lidar[k]), "num_radar_pts": int(n_radar[k])}
        t["sample_annotation"].append(rec)
        tracks[inst]["anns"].append(rec)


def _link_tracks(t, name, tracks, cat_tok):
    """prev/next links along each instance's annotations, and the instance records."""
    for inst, track in tracks.items():
        anns = track["anns"]
        for a, b in zip(anns, anns[1:]):
            a["next"], b["prev"] = b["token"], a["token"]
        t["instance"].append({"token": token("instance", name, inst), "category_token": cat_tok[track["category"]],
                              "nbr_annotations": len(anns), "first_annotation_token": anns[0]["token"],
                              "last_annotation_token": anns[-1]["token"]})
