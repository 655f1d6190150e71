"""Dataset reading the simulator's on-disk layout (see ``simulator.writer``), for mmengine's Runner.

An item is a dict of numpy arrays (``collate_batch`` turns them into tensors):
    points (N, 5) float32 [x, y, z, intensity, elongation], ego frame
    gt_boxes (M, 7) float32 [x, y, z, dx, dy, dz, heading]
    gt_labels (M,) int64 (index into ``CLASSES``), gt_num_points (M,) int64, gt_difficulty (M,) int64
    frame_id str
Boxes with no LiDAR point are not in ``gt_*`` (they stay on disk as ``empty_boxes``).
"""
from pathlib import Path


from ..registry import DATASETS
from .base import PipelineDataset
from .simulator.writer import load_frame, read_infos
from .transforms import Compose


@DATASETS.register_module()
class SyntheticDataset(PipelineDataset):
    """Frames of ``<data_root>/<split>_infos.json`` with a transform ``pipeline``.

    Args:
        data_root: folder written by ``tools/create_data.py synthetic``.
        split: 'train' or 'val' (any split name with an info file).
        pipeline: list of transform configs (``dict(type=...)``) or callables ``t(item, rng)``.
        point_cloud_range: the detection range the pipeline's range transforms use where their configs leave it
            unset (``dict(type='RangeFilter')``).
        max_frames: use only the first ``max_frames`` frames (None = all).
        seed: None seeds each item's augmentation generator from numpy's global state (which mmengine
            seeds per worker with ``randomness=dict(seed=...)``) mixed with ``torch.initial_seed()``
            (which a DataLoader gives each worker afresh every epoch, from torch's seeded generator):
            reproducible runs, different augmentations per epoch. An int makes item ``i``'s
            augmentation a fixed function of ``(seed, i)`` (reproducible debugging, tests).
        test_mode: accepted for mmengine compatibility; evaluation pipelines simply omit augmentation.
    """

    def __init__(self, data_root, split="train", pipeline=(), max_frames=None, seed=None, test_mode=False,
                 point_cloud_range=None):
        from . import CLASSES

        self.data_root = Path(data_root)
        self.split = split
        self.infos, frames = read_infos(self.data_root, split)
        self.frames = frames[:max_frames] if max_frames is not None else frames
        self.pipeline = Compose(pipeline, point_cloud_range=point_cloud_range)
        self.seed = seed
        self.test_mode = test_mode
        self.metainfo = {"classes": CLASSES}

    def __len__(self):
        return len(self.frames)

    def frame_path(self, index):
        return self.data_root / self.frames[index]["path"]

    def get_data_info(self, index):
        """The item before the pipeline (arrays straight from the frame file)."""
        data = load_frame(self.frame_path(index))
        return {
            "points": data["points"],
            "gt_boxes": data["gt_boxes"],
            "gt_labels": data["gt_labels"],
            "gt_num_points": data["gt_num_points"],
            "gt_difficulty": data["gt_difficulty"],
            "frame_id": data["frame_id"],
        }

    def items_description(self):
        return f"frames of split {self.split!r}"
