"""Datasets, transforms and collation of pc3d's data pipeline (the first stages of the data flow).

``CLASSES`` are the detection classes in label order (``gt_labels`` index into it). Importing this
package registers the datasets in ``pc3d.registry.DATASETS``, the transforms in ``TRANSFORMS`` and
``collate_batch`` in mmengine's ``FUNCTIONS`` (config: ``collate_fn=dict(type='pc3d_collate_batch')``);
it never imports open3d (only the simulator does, when it runs).
"""
from pc3d.classes import WAYMO_CLASSES as CLASSES

from . import transforms  # noqa: E402,F401  (registration)
from .collate import collate_batch  # noqa: E402
from .synthetic import SyntheticDataset  # noqa: E402
from .waymo import WaymoDataset  # noqa: E402
from .nuscenes import NuScenesDataset  # noqa: E402
from .scannet import ScanNetDataset  # noqa: E402
from .custom import CustomDataset  # noqa: E402  (your own data: docs/custom_dataset.md)
from . import modelnet, scanobjectnn, shapes  # noqa: E402,F401  (object datasets for Any2Point)

__all__ = ["CLASSES", "SyntheticDataset", "WaymoDataset", "NuScenesDataset", "ScanNetDataset", "CustomDataset",
           "collate_batch"]
