"""``create_data.py nuscenes``: nuScenes tables -> one info file per split.

``python tools/create_data.py nuscenes --root data/nuscenes --version v1.0-trainval [--sweeps 10]`` writes
``<out>/nuscenes_infos_<split>.pkl`` (out defaults to the root) for the version's official splits
(``train``/``val``, ``mini_train``/``mini_val``, ``test``). Scenes in no official split (e.g. a generated
dataset) go to ``nuscenes_infos_unsplit.pkl`` and are reported, never dropped.

An info file is a pickled dict ``{"metainfo": {...}, "infos": [one dict per keyframe]}``; a keyframe info:

- ``token`` sample token, ``scene_name``, ``timestamp`` (µs), ``lidar_token``, ``lidar_path`` (relative
  to the root), ``num_points`` of the keyframe scan;
- ``lidar2ego``, ``ego2global``: (4, 4) float64;
- ``sweeps``: list (newest first, at most ``--sweeps``) of ``sweeps.sweep_infos`` entries;
- the ``boxes.sample_boxes`` fields: ``gt_boxes`` (M, 7), ``gt_velocity`` (M, 2), ``gt_names``,
  ``categories``, ``gt_attributes``, ``num_lidar_pts``, ``num_radar_pts``, ``ann_tokens``,
  ``instance_tokens``, ``bike_racks``.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from .boxes import sample_boxes
from .poses import record_pose
from .splits import split_of_scenes
from .sweeps import check_points_file, sweep_infos
from .tables import NuScenesFormatError, NuScenesTables

INFO_FORMAT = 1


def sample_info(tables: NuScenesTables, sample: dict, scene_name: str, max_sweeps: int, sample_time: dict) -> dict:
    """The info dict of one keyframe (see the module docstring)."""
    sd = tables.lidar_of(sample)
    lidar2ego = record_pose(tables.link("sample_data", sd, "calibrated_sensor_token", "calibrated_sensor"))
    ego2global = record_pose(tables.link("sample_data", sd, "ego_pose_token", "ego_pose"))
    path = tables.field("sample_data", sd, "filename")
    num_points = check_points_file(tables.root / path)
    info = {
        "token": sample["token"], "scene_name": scene_name, "timestamp": int(sample["timestamp"]),
        "lidar_token": sd["token"], "lidar_path": path, "num_points": int(num_points),
        "lidar2ego": lidar2ego, "ego2global": ego2global,
        "sweeps": sweep_infos(tables, sd, max_sweeps),
    }
    info.update(sample_boxes(tables, sample, ego2global @ lidar2ego, sample_time))
    too_many = np.nonzero(info["num_lidar_pts"] > num_points)[0]
    if len(too_many):
        k = too_many[0]
        raise NuScenesFormatError(
            f"{tables.path('sample_annotation')}: record {info['ann_tokens'][k]!r} field 'num_lidar_pts' = "
            f"{info['num_lidar_pts'][k]} exceeds the {num_points} points of {tables.root / path}")
    return info


def create_infos(root, version: str = "v1.0-trainval", max_sweeps: int = 10, progress: bool = True) -> dict:
    """{split: list of keyframe infos} for every scene of ``version`` (scenes in time order)."""
    from tqdm import tqdm

    tables = NuScenesTables(root, version)
    sample_time = {s["token"]: int(tables.field("sample", s, "timestamp")) for s in tables.tables["sample"]}
    scenes = {tables.field("scene", sc, "name"): sc for sc in tables.tables["scene"]}
    by_split = split_of_scenes(list(scenes), version)
    out = {}
    total = sum(len(tables.scene_samples(scenes[n])) for names in by_split.values() for n in names)
    with tqdm(total=total, desc=f"nuScenes {version} infos", unit="sample", disable=not progress) as bar:
        for split, names in by_split.items():
            infos = []
            for name in names:
                for sample in tables.scene_samples(scenes[name]):
                    infos.append(sample_info(tables, sample, name, max_sweeps, sample_time))
                    bar.update(1)
            out[split] = infos
    return out


def info_path(out_dir, split: str) -> Path:
    return Path(out_dir) / f"nuscenes_infos_{split}.pkl"


def write_infos(out_dir, version: str, infos_by_split: dict, max_sweeps: int) -> list:
    """Pickles each split's infos; returns the paths written."""
    from . import DETECTION_NAMES

    paths = []
    for split, infos in infos_by_split.items():
        if split == "unsplit" and not infos:
            continue
        meta = {"dataset": "nuscenes", "version": version, "split": split, "max_sweeps": max_sweeps,
                "classes": DETECTION_NAMES, "info_format": INFO_FORMAT}
        path = info_path(out_dir, split)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            pickle.dump({"metainfo": meta, "infos": infos}, f, protocol=pickle.HIGHEST_PROTOCOL)
        paths.append(path)
    return paths


def add_arguments(parser):
    parser.add_argument("--root", default="data/nuscenes", help="nuScenes root (samples/, sweeps/, v1.0-*/)")
    parser.add_argument("--version", default="v1.0-trainval", help="v1.0-trainval, v1.0-mini or v1.0-test")
    parser.add_argument("--sweeps", type=int, default=10, help="previous sweeps kept per keyframe (default 10)")
    parser.add_argument("--out", default=None, help="folder of the info files (default: the root)")
    return parser


def main(args) -> list:
    if args.sweeps < 0:
        raise ValueError(f"--sweeps must be >= 0, got {args.sweeps}")
    infos = create_infos(args.root, args.version, args.sweeps)
    paths = write_infos(args.out or args.root, args.version, infos, args.sweeps)
    for split, rows in infos.items():
        if split == "unsplit" and rows:
            scenes = sorted({r["scene_name"] for r in rows})
            print(f"{len(scenes)} scenes are in no official {args.version} split: {scenes[:5]}"
                  f"{' ...' if len(scenes) > 5 else ''} -> {info_path(args.out or args.root, split)}")
    for p in paths:
        print(f"wrote {p}")
    return paths


def add_parser(subparsers):
    """Registers the ``nuscenes`` subcommand of ``tools/create_data.py``."""
    p = subparsers.add_parser("nuscenes", help="nuScenes tables -> info files per split",
                              description=__doc__.split("\n\n")[0])
    add_arguments(p)
    p.set_defaults(func=main)
    return p
