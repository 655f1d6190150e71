"""Raw ScanNet (``<root>/scans/<scene>/...``) -> pc3d's ScanNet info files.

Input: ``<root>/scans/<scene>/`` (see ``reader``), the label map ``scannetv2-labels.combined.tsv`` and
the split lists ``scannetv2_<split>.txt`` (each searched in ``<root>`` then ``<root>/meta_data``).
Output under ``out``:
    points/<scene>.npz       points (N, 6) float32 [x, y, z, r, g, b] aligned, pts_semantic_mask (N,)
                             int64, pts_instance_mask (N,) int64, gt_boxes (M, 6) float32, gt_labels (M,)
                             int64, gt_instance_ids (M,) int64, axis_align_matrix (4, 4) float64
    scannet_infos_<split>.json  {"metainfo": {...}, "data_list": [{scene_id, path, num_points,
                             axis_align_matrix, gt_boxes, gt_labels}, ...]}
"""
import json
from pathlib import Path

import numpy as np

from .labels import SCANNET_DET_CLASSES, SCANNET_SEG_CLASSES, TSV_NAME, read_label_map
from .reader import read_scene

NPZ_KEYS = ("points", "pts_semantic_mask", "pts_instance_mask", "gt_boxes", "gt_labels", "gt_instance_ids",
            "axis_align_matrix")


def find_meta(root, name):
    """``<root>/<name>`` or ``<root>/meta_data/<name>``; FileNotFoundError listing both when neither exists."""
    for p in (Path(root) / name, Path(root) / "meta_data" / name):
        if p.is_file():
            return p
    raise FileNotFoundError(f"{name} not found in {root} or {Path(root) / 'meta_data'}")


def read_split(root, split):
    """Scene ids of ``scannetv2_<split>.txt`` (blank lines skipped)."""
    path = find_meta(root, f"scannetv2_{split}.txt")
    scenes = [s.strip() for s in path.read_text().splitlines() if s.strip()]
    if not scenes:
        raise ValueError(f"{path}: split list is empty")
    return scenes


def info_path(out, split):
    return Path(out) / f"scannet_infos_{split}.json"


def convert_split(root, out, split, label_map=None, progress=True):
    """Converts the scenes of ``split``; returns the info rows. Scenes are read fully before anything is
    written, so a bad scan stops the conversion with its error instead of leaving a partial split."""
    from tqdm import tqdm

    root, out = Path(root), Path(out)
    label_map = label_map if label_map is not None else read_label_map(find_meta(root, TSV_NAME))
    scenes = read_split(root, split)
    (out / "points").mkdir(parents=True, exist_ok=True)
    rows = []
    for scene in tqdm(scenes, desc=f"scannet {split}", unit="scene", disable=not progress):
        data = read_scene(root / "scans" / scene, label_map, scene)
        rel = f"points/{scene}.npz"
        np.savez(out / rel, **{k: data[k] for k in NPZ_KEYS})
        rows.append({"scene_id": scene, "path": rel, "num_points": int(len(data["points"])),
                     "axis_align_matrix": data["axis_align_matrix"].tolist(),
                     "gt_boxes": data["gt_boxes"].tolist(), "gt_labels": data["gt_labels"].tolist()})
    meta = {"dataset": "ScanNet v2", "root": str(root), "seg_classes": list(SCANNET_SEG_CLASSES),
            "det_classes": list(SCANNET_DET_CLASSES), "ignore_index": -1}
    info_path(out, split).write_text(json.dumps({"metainfo": meta, "data_list": rows}))
    return rows


def read_infos(out, split):
    """(metainfo dict, data_list) of ``scannet_infos_<split>.json``."""
    path = info_path(out, split)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ScanNet info file not found (run tools/create_data.py scannet)")
    data = json.loads(path.read_text())
    for key in ("metainfo", "data_list"):
        if key not in data:
            raise ValueError(f"{path}: info file lacks field {key!r}")
    return data["metainfo"], data["data_list"]


def load_scene(path):
    """Arrays of a converted scene file (``NPZ_KEYS``); error naming the file and a missing field."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: converted ScanNet scene not found")
    with np.load(path) as z:
        missing = [k for k in NPZ_KEYS if k not in z.files]
        if missing:
            raise ValueError(f"{path}: converted scene lacks fields {missing}")
        data = {k: z[k] for k in NPZ_KEYS}
    n = len(data["points"])
    for k in ("pts_semantic_mask", "pts_instance_mask"):
        if len(data[k]) != n:
            raise ValueError(f"{path}: field {k!r} has {len(data[k])} entries for {n} points")
    return data
