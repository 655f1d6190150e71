"""ScanObjectNN (h5 release): real scanned objects, 15 classes.

Layout read (the official ``h5_files`` release):
    <root>/main_split/{training,test}_objectdataset.h5                        OBJ_BG
    <root>/main_split_nobg/{training,test}_objectdataset.h5                   OBJ_ONLY
    <root>/main_split/{training,test}_objectdataset_augmentedrot_scale75.h5   PB_T50_RS (hardest)
Each file holds ``data`` (S, 2048, 3) float32 xyz and ``label`` (S,) or (S, 1) integer class.

Items: ``points`` (num_points, 3) float32 normalised to the unit sphere, ``label`` int.
h5py is imported inside the constructor.
"""
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from pc3d.registry import DATASETS

from .object_points import ObjectAugment, normalize_unit_sphere, object_item, resample

SCANOBJECTNN_CLASSES = ("bag", "bin", "box", "cabinet", "chair", "desk", "display", "door", "shelf", "table",
                        "bed", "pillow", "sink", "sofa", "toilet")
_VARIANTS = {
    "OBJ_BG": ("main_split", ""),
    "OBJ_ONLY": ("main_split_nobg", ""),
    "PB_T50_RS": ("main_split", "_augmentedrot_scale75"),
}


def scanobjectnn_file(data_root, split: str, variant: str) -> Path:
    """Path of the h5 file of ``split`` ('train' | 'test') and ``variant`` (OBJ_BG, OBJ_ONLY, PB_T50_RS)."""
    if variant not in _VARIANTS:
        raise ValueError(f"variant must be one of {sorted(_VARIANTS)}, got {variant!r}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder, suffix = _VARIANTS[variant]
    stem = "training" if split == "train" else "test"
    return Path(data_root) / folder / f"{stem}_objectdataset{suffix}.h5"


@DATASETS.register_module()
class ScanObjectNN(Dataset):
    """ScanObjectNN classification from its h5 files.

    Args:
        data_root: the ``h5_files`` directory.
        split: 'train' or 'test'; variant: 'OBJ_BG', 'OBJ_ONLY' or 'PB_T50_RS'.
        num_points: points per sample (first rows, or a random subset when ``augment``).
        augment: random scale / z-rotation / jitter (training).
    """

    def __init__(self, data_root: str, split: str = "train", variant: str = "PB_T50_RS", num_points: int = 1024,
                 augment: bool = False):
        import h5py

        path = scanobjectnn_file(data_root, split, variant)
        if not path.is_file():
            raise FileNotFoundError(f"ScanObjectNN file missing: {path}")
        with h5py.File(path, "r") as f:
            for key in ("data", "label"):
                if key not in f:
                    raise ValueError(f"{path}: no '{key}' dataset (keys: {list(f.keys())})")
            self.points = np.asarray(f["data"], dtype=np.float32)
            self.labels = np.asarray(f["label"]).reshape(-1).astype(np.int64)
        if self.points.ndim != 3 or self.points.shape[2] < 3 or len(self.points) != len(self.labels):
            raise ValueError(f"{path}: data {self.points.shape} / label {self.labels.shape} are not (S, P, 3) / (S,)")
        if len(self.labels) and not 0 <= self.labels.min() <= self.labels.max() < len(SCANOBJECTNN_CLASSES):
            raise ValueError(f"{path}: labels outside [0, {len(SCANOBJECTNN_CLASSES)})")
        self.classes = SCANOBJECTNN_CLASSES
        self.metainfo = dict(classes=self.classes)
        self.num_points = num_points
        self.augment = ObjectAugment() if augment else None
        self.rng = np.random.default_rng() if augment else None

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        p = normalize_unit_sphere(resample(self.points[i, :, :3], self.num_points, self.rng))
        return object_item(self.augment(p) if self.augment else p, self.labels[i])
