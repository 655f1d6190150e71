"""Writes simulated rooms in ScanNet v2's raw layout.

``<root>/scans/<scene>/{<scene>_vh_clean_2.ply, <scene>_vh_clean_2.0.010000.segs.json,
<scene>.aggregation.json, <scene>.txt}``, ``<root>/scannetv2-labels.combined.tsv`` (the raw categories
the simulator uses) and the split lists ``<root>/scannetv2_{train,val}.txt`` (one scene id a line).
Scene ``i`` is ``scene{i:04d}_00``; train scenes come first, then val. Scene ``i`` is simulated from
``SeedSequence([seed, i])``, so a scene never depends on how many others are written.
"""
import json
from pathlib import Path

import numpy as np

from .labels import TSV_NAME, write_label_map
from .ply import write_ply
from .reader import scene_files
from .sim_furniture import LABEL_ROWS
from .sim_scan import simulate_room


def scene_seed(seed, index):
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def write_scene(scan_dir, scene, room, binary=True):
    """Writes ``room`` (``simulate_room``'s dict) as ScanNet scan ``scene`` into ``scan_dir``."""
    scan_dir = Path(scan_dir)
    scan_dir.mkdir(parents=True, exist_ok=True)
    files = scene_files(scan_dir, scene)
    write_ply(files["ply"], room["raw_xyz"], room["rgb"], room["faces"], binary=binary)
    files["segs"].write_text(json.dumps({"params": {"kThresh": "0.0001", "segMinVerts": "20"},
                                         "sceneId": f"{scene}_vh_clean_2",
                                         "segIndices": room["seg_indices"].tolist()}))
    files["aggregation"].write_text(json.dumps({"sceneId": f"scannet.{scene}", "appId": "pc3d.sim",
                                                "segGroups": room["seg_groups"],
                                                "segmentsFile": f"scannet.{files['segs'].name}"}))
    align = " ".join(f"{v!r}" for v in room["axis_align"].reshape(-1).tolist())
    files["meta"].write_text(f"axisAlignment = {align}\ncolorHeight = 968\ncolorWidth = 1296\n"
                             f"numColorFrames = 0\nnumDepthFrames = 0\nsceneType = {room['scene_type']}\n")
    return files


def write_label_tsv(root):
    path = Path(root) / TSV_NAME
    write_label_map(path, LABEL_ROWS)
    return path


def generate_scannet(root, num_train, num_val, seed=0, density=400.0, binary=True, progress=True):
    """Simulates ``num_train + num_val`` rooms into ``root`` (ScanNet layout). Returns the scene ids per split."""
    from tqdm import tqdm

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    write_label_tsv(root)
    splits = {"train": [f"scene{i:04d}_00" for i in range(num_train)],
              "val": [f"scene{i:04d}_00" for i in range(num_train, num_train + num_val)]}
    with tqdm(total=num_train + num_val, desc="simulated ScanNet rooms", unit="room", disable=not progress) as bar:
        for split, scenes in splits.items():
            for scene in scenes:
                room = simulate_room(scene_seed(seed, int(scene[5:9])), density)
                write_scene(root / "scans" / scene, scene, room, binary=binary)
                bar.update()
            (root / f"scannetv2_{split}.txt").write_text("".join(s + "\n" for s in scenes))
    return splits
