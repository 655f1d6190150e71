"""The shared tail of every pc3d dataset: ``item = pipeline(get_data_info(i), rng(i))``."""
import numpy as np
import torch
from torch.utils.data import Dataset


class PipelineDataset(Dataset):
    """Base of pc3d's datasets: indexing, the per-item random generator and the transform pipeline.

    A subclass sets ``self.pipeline`` (a ``Compose``) and ``self.seed`` and implements ``__len__``,
    ``get_data_info(index)`` (the item before the pipeline) and ``items_description()`` (what its items
    are, for the out-of-range message, e.g. ``"frames of split 'val'"``).
    """

    def items_description(self) -> str:
        return "items"

    def _rng(self, index):
        # seed=None: numpy's global state (seeded per DataLoader worker) mixed with torch's seed, so runs
        # repeat for a seed but epochs differ; seed=int: the augmentation depends on (seed, index) only.
        if self.seed is None:
            return np.random.default_rng([np.random.randint(0, 2 ** 31 - 1), torch.initial_seed() % 2 ** 63])
        return np.random.default_rng([int(self.seed), int(index)])

    # A training dataset with ``resample_empty_gt`` set replaces an item left without ground-truth boxes
    # after its pipeline by a uniformly drawn other item (OpenPCDet's ``DatasetTemplate.prepare_data``
    # and mmdet3d's ``filter_empty_gt`` do so), at most ``MAX_RESAMPLES`` times.
    resample_empty_gt = False
    MAX_RESAMPLES = 100

    def __getitem__(self, index):
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} {self.items_description()}")
        index = index % n
        rng = self._rng(index)
        item = self.pipeline(self.get_data_info(index), rng)
        for _ in range(self.MAX_RESAMPLES if self.resample_empty_gt else 0):
            if len(item.get("gt_boxes", ())) > 0:
                break
            index = int(rng.integers(n))  # drawn from the emptied item's generator: repeatable for a seed
            rng = self._rng(index)
            item = self.pipeline(self.get_data_info(index), rng)
        return item
