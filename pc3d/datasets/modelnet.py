"""ModelNet40 / ModelNet10 in the common resampled text layout (``modelnet40_normal_resampled``).

Layout read (nothing is converted):
    <root>/modelnet40_shape_names.txt       one class name per line, in label order
    <root>/modelnet40_{train,test}.txt      one shape id per line, e.g. ``night_stand_0001``
    <root>/<class>/<shape id>.txt           rows ``x,y,z,nx,ny,nz`` (comma-separated), pre-shuffled
ModelNet10 uses the same layout with the ``modelnet10_`` prefix. The class of a shape id is the id
without its trailing ``_NNNN``.

Items: ``points`` (num_points, 3) float32 xyz normalised to the unit sphere (normals dropped: the
Any2Point tokenizer uses geometry only), ``label`` int.
"""
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from pc3d.registry import DATASETS

from .object_points import ObjectAugment, normalize_unit_sphere, object_item, resample


def read_modelnet_points(path) -> np.ndarray:
    """One ``<shape id>.txt`` -> (R, 6) float32 [x, y, z, nx, ny, nz] (or (R, 3) for xyz-only files)."""
    data = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)
    if data.shape[1] not in (3, 6):
        raise ValueError(f"{path}: expected 3 or 6 comma-separated columns, got {data.shape[1]}")
    return data


@DATASETS.register_module()
class ModelNet(Dataset):
    """ModelNet40/10 classification.

    Args:
        data_root: the ``modelnet40_normal_resampled`` directory.
        split: 'train' or 'test'.
        num_categories: 40 or 10 (selects the ``modelnet40_`` / ``modelnet10_`` index files).
        num_points: points per sample; the first ``num_points`` rows (files are pre-shuffled), or a
            random subset when ``augment`` is set.
        augment: random scale / z-rotation / jitter (training).
        cache: keep parsed files in memory (parsing a 10k-row text file takes tens of ms).
    """

    def __init__(self, data_root: str, split: str = "train", num_categories: int = 40, num_points: int = 1024,
                 augment: bool = False, cache: bool = True):
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if num_categories not in (10, 40):
            raise ValueError(f"num_categories must be 10 or 40, got {num_categories}")
        self.root = Path(data_root)
        prefix = f"modelnet{num_categories}"
        names_file = self.root / f"{prefix}_shape_names.txt"
        split_file = self.root / f"{prefix}_{split}.txt"
        for f in (names_file, split_file):
            if not f.is_file():
                raise FileNotFoundError(f"ModelNet index file missing: {f}")
        self.classes = tuple(line.strip() for line in names_file.read_text().splitlines() if line.strip())
        self.metainfo = dict(classes=self.classes)
        index = {c: i for i, c in enumerate(self.classes)}
        self.shape_ids = [line.strip() for line in split_file.read_text().splitlines() if line.strip()]
        self.labels = []
        for sid in self.shape_ids:
            cls = sid.rsplit("_", 1)[0]
            if cls not in index:
                raise ValueError(f"{split_file}: shape {sid!r} has class {cls!r} not in {names_file.name}")
            self.labels.append(index[cls])
        self.num_points = num_points
        self.augment = ObjectAugment() if augment else None
        self.rng = np.random.default_rng() if augment else None
        self._cache = {} if cache else None

    def __len__(self) -> int:
        return len(self.shape_ids)

    def path(self, i: int) -> Path:
        sid = self.shape_ids[i]
        return self.root / sid.rsplit("_", 1)[0] / f"{sid}.txt"

    def __getitem__(self, i: int) -> dict:
        xyz = self._cache.get(i) if self._cache is not None else None
        if xyz is None:
            xyz = read_modelnet_points(self.path(i))[:, :3]
            if self._cache is not None:
                self._cache[i] = xyz
        p = normalize_unit_sphere(resample(xyz, self.num_points, self.rng))
        return object_item(self.augment(p) if self.augment else p, self.labels[i])
