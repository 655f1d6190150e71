"""``NuScenesDataset``: keyframes of a ``create_data.py nuscenes`` info file, for mmengine's Runner.

An item (before the pipeline) is a dict:
    points (N, 5) float32 [x, y, z, intensity, time_lag], keyframe LiDAR frame (keyframe rows first, then
        the previous sweeps, newest first; intensity 0-255 as recorded, time_lag in seconds)
    gt_boxes (M, 9) float32 [x, y, z, dx, dy, dz, heading, vx, vy], LiDAR frame (velocity NaN where the
        annotation has no neighbour, unless ``velocity_nan_to`` is set)
    gt_labels (M,) int64 index into ``classes``; gt_num_points (M,) int64 LiDAR + radar points in the box;
    gt_attributes (M,) object array of attribute names ('' none)
    sample_token / frame_id str, timestamp int µs, lidar2ego / ego2global (4, 4) float64,
    bike_racks dict of global translation (R, 3), size (R, 3), rotation (R, 4)
Annotations of ignored categories and classes not in ``classes`` are left out, and so (with
``drop_empty``, default) are boxes without any LiDAR or radar point, which the official metric drops too.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ...registry import DATASETS
from ..base import PipelineDataset
from ..transforms import Compose
from .boxes import DETECTION_NAMES, label_indices
from .sweeps import load_multisweep
from .tables import NuScenesFormatError

PER_BOX = ("gt_boxes", "gt_velocity", "gt_names", "gt_attributes", "num_lidar_pts", "num_radar_pts")


def load_infos(path) -> tuple[dict, list]:
    """(metainfo, infos) of an info file, each info checked for its fields and matching box counts."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"nuScenes info file {path} does not exist (run tools/create_data.py nuscenes)")
    with open(path, "rb") as f:
        data = pickle.load(f)
    if not isinstance(data, dict) or "infos" not in data or "metainfo" not in data:
        raise NuScenesFormatError(f"{path}: expected a dict with 'metainfo' and 'infos'")
    for i, info in enumerate(data["infos"]):
        for key in ("token", "lidar_path", "lidar2ego", "ego2global", "sweeps") + PER_BOX:
            if key not in info:
                raise NuScenesFormatError(f"{path}: info {i} (sample {info.get('token')!r}) lacks field {key!r}")
        m = len(info["gt_boxes"])
        for key in PER_BOX:
            if len(info[key]) != m:
                raise NuScenesFormatError(f"{path}: info {i} (sample {info['token']!r}) field {key!r} has "
                                          f"{len(info[key])} entries but gt_boxes has {m}")
        if np.asarray(info["gt_boxes"]).shape != (m, 7):
            raise NuScenesFormatError(f"{path}: info {i} field 'gt_boxes' must be (M, 7), got "
                                      f"{np.asarray(info['gt_boxes']).shape}")
    return data["metainfo"], data["infos"]


@DATASETS.register_module()
class NuScenesDataset(PipelineDataset):
    """nuScenes keyframes with ``sweeps`` previous sweeps and a transform ``pipeline``.

    Args:
        data_root: nuScenes root (holds samples/, sweeps/ and the info files).
        info_file: info file path, relative to ``data_root`` or absolute; default
            ``nuscenes_infos_<split>.pkl``.
        split: split name used for the default info file ('train', 'val', 'mini_val', ...).
        sweeps: previous sweeps per keyframe (at most the info file's ``max_sweeps``); 10 is the usual
            setting (0.5 s of history at 20 Hz).
        classes: detection names in label order (a subset of ``DETECTION_NAMES``).
        remove_close: sweep points closer than this in |x| and |y| to their sensor are dropped.
        drop_empty: leave out boxes with 0 LiDAR + radar points.
        velocity_nan_to: replace unknown (NaN) GT velocity by this value (e.g. 0.0 for training targets);
            None keeps NaN, which the metric reads as "unknown".
        pipeline, seed, max_samples, test_mode, point_cloud_range: as in ``SyntheticDataset``.
    """

    def __init__(self, data_root, info_file=None, split="train", sweeps=10, classes=DETECTION_NAMES,
                 pipeline=(), remove_close=1.0, drop_empty=True, velocity_nan_to=None, max_samples=None,
                 seed=None, test_mode=False, point_cloud_range=None):
        self.data_root = Path(data_root)
        path = Path(info_file) if info_file is not None else Path(f"nuscenes_infos_{split}.pkl")
        self.info_file = path if path.is_absolute() else self.data_root / path
        meta, infos = load_infos(self.info_file)
        if sweeps > meta.get("max_sweeps", 0):
            raise ValueError(f"sweeps={sweeps} but {self.info_file} holds at most {meta.get('max_sweeps')} "
                             f"sweeps per keyframe (re-run create_data.py nuscenes --sweeps {sweeps})")
        unknown = [c for c in classes if c not in DETECTION_NAMES]
        if unknown:
            raise ValueError(f"classes {unknown} are not nuScenes detection names {DETECTION_NAMES}")
        self.infos = infos[:max_samples] if max_samples is not None else infos
        self.sweeps, self.classes, self.remove_close = int(sweeps), tuple(classes), float(remove_close)
        self.drop_empty, self.velocity_nan_to = drop_empty, velocity_nan_to
        self.pipeline = Compose(pipeline, point_cloud_range=point_cloud_range)
        self.seed, self.test_mode, self.split = seed, test_mode, split
        self.metainfo = {"classes": self.classes, "version": meta.get("version")}

    def __len__(self):
        return len(self.infos)

    def get_data_info(self, index):
        """The item before the pipeline (see the module docstring)."""
        info = self.infos[index]
        points = load_multisweep(self.data_root, info["lidar_path"], info["sweeps"], self.sweeps, self.remove_close)
        labels = label_indices(info["gt_names"], self.classes)
        # -1 = unknown radar count (clamped so that it does not cancel a LiDAR point).
        num_pts = np.asarray(info["num_lidar_pts"], np.int64) + np.maximum(np.asarray(info["num_radar_pts"], np.int64),
                                                                           0)
        keep = labels >= 0
        if self.drop_empty:
            keep &= num_pts > 0
        vel = np.asarray(info["gt_velocity"], np.float64).reshape(-1, 2)[keep]
        if self.velocity_nan_to is not None:
            vel = np.where(np.isnan(vel), float(self.velocity_nan_to), vel)
        boxes = np.concatenate([np.asarray(info["gt_boxes"], np.float64).reshape(-1, 7)[keep], vel], 1)
        return {
            "points": points,
            "gt_boxes": boxes.astype(np.float32),
            "gt_labels": labels[keep],
            "gt_num_points": num_pts[keep],
            "gt_attributes": np.asarray(info["gt_attributes"], dtype=object)[keep],
            "sample_token": info["token"], "frame_id": info["token"], "timestamp": info.get("timestamp"),
            "lidar2ego": np.asarray(info["lidar2ego"], np.float64),
            "ego2global": np.asarray(info["ego2global"], np.float64),
            "bike_racks": info["bike_racks"],
        }

    def items_description(self):
        return f"samples of {self.info_file}"
