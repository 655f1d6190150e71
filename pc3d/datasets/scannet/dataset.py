"""``ScanNetDataset``: converted ScanNet scenes (``convert``) for segmentation and detection.

An item is a dict of numpy arrays (``pc3d.datasets.collate.collate_batch`` batches it):
    points (N, 6) float32 [x, y, z, r, g, b] (aligned frame, metres; colour 0..255 until a transform
        rescales it)
    pts_semantic_mask (N,) int64 seg class 0..19 (``SCANNET_SEG_CLASSES``), -1 ignore
    pts_instance_mask (N,) int64 instance id (objectId + 1), 0 none
    gt_boxes (M, 6) float32 [cx, cy, cz, dx, dy, dz] axis-aligned, or (M, 7) with a zero heading column
        when ``box_dim=7`` (for 7-column detector heads); gt_labels (M,) int64 det class 0..17
    frame_id str (the scene id)
"""
from pathlib import Path

import numpy as np

from ...registry import DATASETS
from ..base import PipelineDataset
from ..transforms import Compose
from .convert import load_scene, read_infos
from .labels import SCANNET_DET_CLASSES, SCANNET_SEG_CLASSES


@DATASETS.register_module()
class ScanNetDataset(PipelineDataset):
    """Scenes of ``<data_root>/scannet_infos_<split>.json`` with a transform ``pipeline``.

    Args:
        data_root: folder written by ``tools/create_data.py scannet``.
        split: 'train', 'val' (any split with an info file).
        pipeline: list of transform configs or callables ``t(item, rng)``.
        point_cloud_range: the detection range the pipeline's range transforms use where their configs leave it
            unset (``dict(type='RangeFilter')``).
        task: 'seg' (metainfo classes = the 20 seg classes) or 'det' (the 18 detection classes).
        box_dim: 6 or 7 columns of ``gt_boxes``.
        max_scenes: only the first ``max_scenes`` scenes (None = all).
        seed: None = per-item generators from numpy's global state and ``torch.initial_seed()`` (a new
            augmentation every epoch, reproducible under mmengine's seeding); int = fixed per item.
        test_mode: accepted for mmengine compatibility.
    """

    def __init__(self, data_root, split="train", pipeline=(), task="seg", box_dim=6, max_scenes=None, seed=None,
                 test_mode=False, point_cloud_range=None):
        if task not in ("seg", "det"):
            raise ValueError(f"task must be 'seg' or 'det', got {task!r}")
        if box_dim not in (6, 7):
            raise ValueError(f"box_dim must be 6 or 7, got {box_dim!r}")
        self.data_root, self.split, self.task, self.box_dim = Path(data_root), split, task, box_dim
        self.infos, scenes = read_infos(self.data_root, split)
        self.scenes = scenes[:max_scenes] if max_scenes is not None else scenes
        self.pipeline = Compose(pipeline, point_cloud_range=point_cloud_range)
        self.seed, self.test_mode = seed, test_mode
        self.metainfo = {"classes": SCANNET_SEG_CLASSES if task == "seg" else SCANNET_DET_CLASSES}

    def __len__(self):
        return len(self.scenes)

    def get_data_info(self, index):
        """The item before the pipeline."""
        row = self.scenes[index]
        data = load_scene(self.data_root / row["path"])
        boxes = data["gt_boxes"].astype(np.float32).reshape(-1, 6)
        if self.box_dim == 7:
            boxes = np.concatenate([boxes, np.zeros((len(boxes), 1), np.float32)], 1)
        return {"points": data["points"].astype(np.float32),
                "pts_semantic_mask": data["pts_semantic_mask"].astype(np.int64),
                "pts_instance_mask": data["pts_instance_mask"].astype(np.int64),
                "gt_boxes": boxes, "gt_labels": data["gt_labels"].astype(np.int64), "frame_id": row["scene_id"]}

    def items_description(self):
        return f"scenes of split {self.split!r}"
