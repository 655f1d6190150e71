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

    def __getitem__(self, index):
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} {self.items_description()}")
        index = index % n
        return self.pipeline(self.get_data_info(index), self._rng(index))
