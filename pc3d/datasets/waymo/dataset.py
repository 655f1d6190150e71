"""``WaymoDataset``: Waymo frames as pc3d items, from v2 parquet or the OpenPCDet-processed layout.

An item (before the ``pipeline``), the same as every pc3d dataset's:
    points (N, 5) float32 [x, y, z, intensity, elongation], vehicle frame, no-label-zone points dropped
    gt_boxes (M, 7) float32 [x, y, z, dx, dy, dz, heading]
    gt_labels (M,) int64 (0 Vehicle, 1 Pedestrian, 2 Cyclist), gt_num_points (M,) int64,
    gt_difficulty (M,) int64 (2 = LEVEL_2 when marked so or <= 5 LiDAR points, else 1)
    frame_id str ``<segment>_<frame index:03d>`` (OpenPCDet's frame ids)
Signs and unknown-type boxes are not detection classes and are dropped; boxes with no LiDAR point are
not ground truth (the metric drops them too) and stay only on disk.
"""
from pathlib import Path

import numpy as np

from ...registry import DATASETS
from ..base import PipelineDataset
from ..transforms import Compose
from . import schema as S

LEVEL_2_MAX_POINTS = 5
# OpenPCDet-style split names accepted for the v2 release's folders.
V2_SPLIT_ALIASES = {"train": "training", "val": "validation", "test": "testing"}


def labels_to_gt(labels):
    """``schema.BoxLabels`` -> the item's ``gt_*`` arrays (see the module docstring)."""
    types = np.asarray(labels.types, dtype=np.int64)
    npts = np.asarray(labels.num_points, dtype=np.int64)
    keep = np.isin(types, list(S.TYPE_TO_LABEL)) & (npts > 0)
    boxes = np.asarray(labels.boxes, dtype=np.float64).reshape(-1, 7)[keep]
    # Wrap only headings outside [-pi, pi) so in-range values stay bit-exact.
    out = (boxes[:, 6] < -np.pi) | (boxes[:, 6] >= np.pi)
    boxes[out, 6] = (boxes[out, 6] + np.pi) % (2 * np.pi) - np.pi
    diff = np.asarray(labels.difficulty, dtype=np.int64)[keep]
    return {
        "gt_boxes": boxes.astype(np.float32),
        "gt_labels": np.array([S.TYPE_TO_LABEL[int(t)] for t in types[keep]], dtype=np.int64),
        "gt_num_points": npts[keep],
        "gt_difficulty": np.where((diff == 2) | (npts[keep] <= LEVEL_2_MAX_POINTS), 2, 1).astype(np.int64),
    }


def points_to_item_points(points, drop_nlz=True, tanh_intensity=False):
    """(N, 6) [x, y, z, intensity, elongation, nlz] -> (N', 5) float32 without no-label-zone points
    (nlz flag > 0; Waymo writes 1 inside, -1 outside)."""
    pts = points[points[:, 5] <= 0] if drop_nlz else points
    pts = np.ascontiguousarray(pts[:, :5], dtype=np.float32)
    if tanh_intensity:  # OpenPCDet squashes Waymo's unbounded intensity with tanh
        pts[:, 3] = np.tanh(pts[:, 3])
    return pts


@DATASETS.register_module()
class WaymoDataset(PipelineDataset):
    """Waymo frames with a transform ``pipeline``.

    Args:
        data_root: for ``source='v2'`` the release root holding ``<split>/<component>/*.parquet``; for
            ``source='openpcdet'`` the folder with ``waymo_infos_<split>.pkl`` and ``processed_dir``.
        split: v2: 'training' / 'validation' / 'testing' (or 'train' / 'val' / 'test'); openpcdet:
            'train' / 'val' (the info file's name).
        source: 'v2' or 'openpcdet'.
        pipeline: list of transform configs or callables ``t(item, rng)`` (as ``SyntheticDataset``).
        point_cloud_range: the detection range the pipeline's range transforms use where their configs leave it
            unset (``dict(type='RangeFilter')``).
        info_file: openpcdet info pickle (default ``<data_root>/waymo_infos_<split>.pkl``).
        processed_dir: openpcdet points folder under ``data_root`` (OpenPCDet names it after its data
            tag, e.g. 'waymo_processed_data_v0_5_0').
        returns: v2 range-image returns to use, (1,) or (1, 2).
        drop_nlz: drop points in no-label zones.
        tanh_intensity: apply OpenPCDet's ``tanh`` to the intensity column.
        with_labels: False for unlabelled data (v2 'testing' has no ``lidar_box``): items get empty gt.
        sampled_interval: keep every k-th frame (OpenPCDet's SAMPLED_INTERVAL).
        max_frames: use only the first ``max_frames`` frames (None = all).
        seed: None or int, as in ``SyntheticDataset`` (per-item augmentation generator).
        test_mode: accepted for mmengine compatibility.
        resample_empty_gt: replace a training item left without boxes after the pipeline by another
            (the papers' OpenPCDet and mmdet3d training; see ``PipelineDataset``).
    """

    def __init__(self, data_root, split="train", source="openpcdet", pipeline=(), info_file=None,
                 processed_dir="waymo_processed_data", returns=(1, 2), drop_nlz=True, tanh_intensity=False,
                 with_labels=True, sampled_interval=1, max_frames=None, seed=None, test_mode=False,
                 resample_empty_gt=False, point_cloud_range=None):
        from .. import CLASSES

        if source not in ("v2", "openpcdet"):
            raise ValueError(f"source must be 'v2' or 'openpcdet', got {source!r}")
        if int(sampled_interval) < 1:
            raise ValueError(f"sampled_interval must be >= 1, got {sampled_interval}")
        self.data_root, self.split, self.source = Path(data_root), split, source
        self.returns, self.drop_nlz, self.tanh_intensity = tuple(returns), drop_nlz, tanh_intensity
        self.with_labels = with_labels
        self.pipeline = Compose(pipeline, point_cloud_range=point_cloud_range)
        self.seed, self.test_mode = seed, test_mode
        self.resample_empty_gt = bool(resample_empty_gt) and not test_mode
        self.metainfo = {"classes": CLASSES}
        self._segments = {}
        if source == "openpcdet":
            from .openpcdet import load_infos

            self.info_file = Path(info_file) if info_file else self.data_root / f"waymo_infos_{split}.pkl"
            self.points_dir = self.data_root / processed_dir
            frames = load_infos(self.info_file)
        else:
            self.split = V2_SPLIT_ALIASES.get(split, split)
            frames = self._index_v2()
        frames = frames[::int(sampled_interval)]
        self.frames = frames[:max_frames] if max_frames is not None else frames

    def _index_v2(self):
        """[{'segment', 'timestamp', 'index'}] of every frame of the split, in segment/time order."""
        from .v2_reader import list_segments

        frames = []
        for seg in list_segments(self.data_root, self.split):
            for i, ts in enumerate(self._segment(seg).timestamps()):
                frames.append({"segment": seg, "timestamp": ts, "index": i})
        return frames

    def _segment(self, name):
        from .v2_reader import V2Segment

        if name not in self._segments:
            self._segments[name] = V2Segment(self.data_root, self.split, name, with_labels=self.with_labels)
        return self._segments[name]

    def __len__(self):
        return len(self.frames)

    def read_frame(self, index):
        """(points (N, 6) float32 [x, y, z, intensity, elongation, nlz], ``schema.BoxLabels`` or None,
        frame_id) of frame ``index``, before any filtering."""
        f = self.frames[index]
        if self.source == "v2":
            seg = self._segment(f["segment"])
            points, _ = seg.points(f["timestamp"], self.returns)
            labels = seg.labels(f["timestamp"]) if self.with_labels else None
            return points, labels, f"{f['segment']}_{f['index']:03d}"
        from .openpcdet import annos_to_labels, expected_rows, load_points, points_path

        points = load_points(points_path(self.points_dir, f), expected_rows(f))
        pc = f["point_cloud"]
        frame_id = f.get("frame_id", f"{pc['lidar_sequence']}_{int(pc['sample_idx']):03d}")
        labels = None
        if self.with_labels:
            if "annos" not in f:
                raise ValueError(f"{self.info_file}: frame {frame_id} lacks field 'annos'")
            labels = annos_to_labels(f["annos"], f"{self.info_file} frame {frame_id}")
        return points, labels, frame_id

    def get_data_info(self, index):
        """The item before the pipeline."""
        points, labels, frame_id = self.read_frame(index)
        item = {"points": points_to_item_points(points, self.drop_nlz, self.tanh_intensity)}
        item.update(labels_to_gt(labels if labels is not None else S.BoxLabels.empty()))
        item["frame_id"] = frame_id
        return item

    def items_description(self):
        return f"Waymo frames of split {self.split!r}"
