"""Raw ScanNet scan -> aligned points, semantic/instance labels and axis-aligned boxes.

A scan folder ``<scans>/<scene>/`` holds (ScanNet v2 layout):
    <scene>_vh_clean_2.ply                  mesh; vertices x, y, z (float), red, green, blue (uchar)
    <scene>_vh_clean_2.0.010000.segs.json   {"segIndices": [segment id per vertex]}
    <scene>.aggregation.json                {"segGroups": [{"id", "objectId", "segments", "label"}]}
    <scene>.txt                             "axisAlignment = m00 m01 ... m33" (row-major 4x4)
Labels come from ``scannetv2-labels.combined.tsv`` (raw_category -> nyu40id, see ``labels``).

Axis alignment: ``p_aligned = M @ [p_raw, 1]`` (ScanNet's ``axisAlignment`` matrix). A ``.txt`` with
no ``axisAlignment`` line (ScanNet's test scans) means identity.
"""
import json
from pathlib import Path

import numpy as np

from .labels import IGNORE_INDEX, NYU40_TO_DET, NYU40_TO_SEG
from .ply import read_ply_vertices


def scene_files(scan_dir, scene=None):
    """Paths of a scan's files: dict ply, segs, aggregation, meta (``scene`` defaults to the folder name)."""
    d = Path(scan_dir)
    s = scene or d.name
    return {"ply": d / f"{s}_vh_clean_2.ply", "segs": d / f"{s}_vh_clean_2.0.010000.segs.json",
            "aggregation": d / f"{s}.aggregation.json", "meta": d / f"{s}.txt"}


def read_axis_alignment(path):
    """Reads ``axisAlignment`` from a scan's ``<scene>.txt``: (4, 4) float64 (identity when absent)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: scan meta file (<scene>.txt) not found")
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key.strip() != "axisAlignment":
            continue
        try:
            vals = [float(v) for v in value.split()]
        except ValueError:
            raise ValueError(f"{path}: field 'axisAlignment' is not a list of numbers: "
                             f"{value.strip()[:80]!r}") from None
        if len(vals) != 16 or not np.isfinite(vals).all():
            raise ValueError(f"{path}: field 'axisAlignment' must hold 16 finite numbers, got {len(vals)}")
        m = np.array(vals, dtype=np.float64).reshape(4, 4)
        if not np.allclose(m[3], [0, 0, 0, 1]) or abs(np.linalg.det(m[:3, :3])) < 1e-9:
            raise ValueError(f"{path}: field 'axisAlignment' is not an invertible affine 4x4 matrix: {m.tolist()}")
        return m
    return np.eye(4)


def _read_json(path, field):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found (needed for {field!r})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid JSON ({e}); cannot read {field!r}") from None
    if not isinstance(data, dict) or field not in data:
        raise ValueError(f"{path}: JSON has no field {field!r}")
    return data[field]


def read_segments(path, num_vertices):
    """``segIndices`` of a ``*.segs.json``: (V,) int64 segment id per mesh vertex."""
    seg = _read_json(path, "segIndices")
    try:
        seg = np.asarray(seg, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{path}: field 'segIndices' must be a list of integers") from None
    if seg.ndim != 1 or len(seg) != num_vertices:
        raise ValueError(f"{path}: field 'segIndices' has {seg.size} entries but the mesh has {num_vertices} "
                         "vertices")
    return seg


def read_aggregation(path):
    """``segGroups`` of a ``*.aggregation.json``: list of dicts objectId (int), label (str), segments (list int)."""
    groups = _read_json(path, "segGroups")
    if not isinstance(groups, list):
        raise ValueError(f"{path}: field 'segGroups' must be a list")
    out = []
    for i, g in enumerate(groups):
        for key in ("objectId", "label", "segments"):
            if not isinstance(g, dict) or key not in g:
                raise ValueError(f"{path}: segGroups[{i}] lacks field {key!r}")
        if not isinstance(g["label"], str) or not isinstance(g["segments"], list):
            raise ValueError(f"{path}: segGroups[{i}] field 'label' must be a string and 'segments' a list")
        out.append({"objectId": int(g["objectId"]), "label": g["label"],
                    "segments": [int(s) for s in g["segments"]]})
    ids = [g["objectId"] for g in out]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: segGroups field 'objectId' has duplicates")
    return out


def boxes_from_instances(xyz, instance, nyu40):
    """Axis-aligned boxes of the detection-class instances from their points' min/max.

    Args:
        xyz: (N, 3) aligned coordinates. instance: (N,) int64 (0 = none). nyu40: (K + 1,) NYU40 id per
            instance id (index 0 unused).
    Returns:
        boxes (M, 6) float32 [cx, cy, cz, dx, dy, dz], labels (M,) int64 det class, instance_ids (M,) int64,
        in increasing instance id order; instances without points or outside the 18 classes are left out.
    """
    boxes, labels, ids = [], [], []
    for inst in range(1, len(nyu40)):
        det = NYU40_TO_DET[nyu40[inst]]
        pts = xyz[instance == inst]
        if det < 0 or len(pts) == 0:
            continue
        lo, hi = pts.min(0), pts.max(0)
        boxes.append(np.concatenate([(lo + hi) / 2, hi - lo]))
        labels.append(det)
        ids.append(inst)
    return (np.asarray(boxes, np.float32).reshape(-1, 6), np.asarray(labels, np.int64),
            np.asarray(ids, np.int64))


def read_scene(scan_dir, label_map, scene=None, with_labels=True):
    """Reads one raw ScanNet scan.

    Args:
        scan_dir: the scan folder. label_map: raw_category -> nyu40id (``labels.read_label_map``).
        scene: scene id (default: folder name). with_labels: False for unlabelled (test) scans.
    Returns dict:
        points (N, 6) float32 [x, y, z, r, g, b] aligned xyz (m), colour 0..255
        pts_semantic_mask (N,) int64 seg class 0..19, -1 ignore (unannotated or other NYU40 class)
        pts_instance_mask (N,) int64 aggregation objectId + 1, 0 = no instance
        pts_nyu40 (N,) int64 NYU40 id, 0 unannotated
        gt_boxes (M, 6) float32 [cx, cy, cz, dx, dy, dz] aligned, gt_labels (M,) int64 det class 0..17,
        gt_instance_ids (M,) int64, axis_align_matrix (4, 4) float64, scene_id str
    """
    files = scene_files(scan_dir, scene)
    scene = scene or Path(scan_dir).name
    for key in ("ply", "meta") + (("segs", "aggregation") if with_labels else ()):
        if not files[key].is_file():
            raise FileNotFoundError(f"{files[key]}: scan file not found ({key} of scene {scene})")
    v = read_ply_vertices(files["ply"], required=("x", "y", "z", "red", "green", "blue"))
    xyz = np.stack([v["x"], v["y"], v["z"]], 1).astype(np.float64)
    align = read_axis_alignment(files["meta"])
    xyz = xyz @ align[:3, :3].T + align[:3, 3]
    rgb = np.stack([v["red"], v["green"], v["blue"]], 1).astype(np.float32)
    n = len(xyz)
    out = {"points": np.concatenate([xyz.astype(np.float32), rgb], 1), "axis_align_matrix": align,
           "scene_id": scene}
    if not with_labels:
        return out
    seg = read_segments(files["segs"], n)
    groups = read_aggregation(files["aggregation"])
    for i, g in enumerate(groups):
        if g["objectId"] < 0:
            raise ValueError(f"{files['aggregation']}: segGroups[{i}] field 'objectId' = {g['objectId']} is negative")
    nyu40_of = np.zeros(max((g["objectId"] for g in groups), default=-1) + 2, np.int64)  # per instance id
    seg_ids, seg_inv = np.unique(seg, return_inverse=True)
    seg_owner = np.zeros(len(seg_ids), np.int64)  # instance id per segment, 0 = none
    for i, g in enumerate(groups):
        if g["label"] not in label_map:
            raise ValueError(f"{files['aggregation']}: segGroups[{i}] field 'label' = {g['label']!r} is not a "
                             "raw_category of the label map")
        inst = g["objectId"] + 1
        nyu40_of[inst] = label_map[g["label"]]
        pos = np.searchsorted(seg_ids, g["segments"])
        known = (pos < len(seg_ids)) & (seg_ids[np.minimum(pos, len(seg_ids) - 1)] == g["segments"])
        if not known.all():
            bad = np.asarray(g["segments"])[~known][0]
            raise ValueError(f"{files['aggregation']}: segGroups[{i}] field 'segments' names segment {bad}, "
                             f"which no vertex of {files['segs'].name} has")
        # ScanNet annotations never share segments; if they do, the later group wins (as in ScanNet's export)
        seg_owner[pos] = inst
    instance = seg_owner[seg_inv]
    nyu40 = nyu40_of[instance]
    out["pts_nyu40"] = nyu40
    out["pts_semantic_mask"] = np.where(instance > 0, NYU40_TO_SEG[nyu40], IGNORE_INDEX)
    out["pts_instance_mask"] = instance
    out["gt_boxes"], out["gt_labels"], out["gt_instance_ids"] = boxes_from_instances(xyz, instance, nyu40_of)
    return out
