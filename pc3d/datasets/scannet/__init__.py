"""ScanNet v2: raw-scan reader, info-file converter, dataset and indoor transforms, and the simulator that
writes procedurally furnished rooms in ScanNet's raw layout.

Importing this package registers ``ScanNetDataset`` in ``pc3d.registry.DATASETS`` and the indoor
transforms in ``TRANSFORMS``; it never imports open3d.
"""
from . import transforms  # noqa: F401  (registration)
from .dataset import ScanNetDataset
from .labels import IGNORE_INDEX, SCANNET_DET_CLASSES, SCANNET_SEG_CLASSES, read_label_map
from .reader import read_scene

__all__ = ["ScanNetDataset", "read_scene", "read_label_map", "IGNORE_INDEX", "SCANNET_SEG_CLASSES",
           "SCANNET_DET_CLASSES"]
