"""Turns collate_batch's dict into the detector's (inputs, data_samples) and moves it to the model's device."""
from typing import Dict

import torch
from mmengine.model import BaseDataPreprocessor

from pc3d.registry import MODELS

# Keys of collate_batch's output that are the model input; every other per-sample list becomes a
# field of that sample's data sample (GT and meta pass through to the metric).
INPUT_KEYS = ("points", "batch_size")


@MODELS.register_module()
class PointsDataPreprocessor(BaseDataPreprocessor):
    """``collate_batch`` dict -> ``dict(inputs=dict(points, batch_size), data_samples=[dict per sample])``.

    Input: ``points (sum N, 1 + C) float32`` (column 0 = sample index), ``batch_size`` int, and per-sample
    lists (``gt_boxes (M, 7)``, ``gt_labels (M,)``, ``gt_num_points``, ``gt_difficulty``, ``frame_id`` ...).
    """

    def forward(self, data: Dict, training: bool = False) -> Dict:
        if "inputs" in data:  # already split (e.g. a caller built the batch itself)
            return self.cast_data(data)
        if "points" not in data or "batch_size" not in data:
            raise ValueError(f"a batch needs 'points' and 'batch_size' (collate_batch's output), got keys {sorted(data)}")
        data = self.cast_data(data)
        batch_size = int(data["batch_size"])
        samples = [dict() for _ in range(batch_size)]
        for key, value in data.items():
            if key in INPUT_KEYS:
                continue
            if isinstance(value, (list, tuple)) and len(value) == batch_size:
                for sample, item in zip(samples, value):
                    sample[key] = item
        points = data["points"]
        if not isinstance(points, torch.Tensor) or points.dim() != 2:
            raise ValueError(f"points must be a (N, 1 + C) tensor, got {type(points).__name__} "
                             f"{tuple(getattr(points, 'shape', ()))}")
        return dict(inputs=dict(points=points, batch_size=batch_size), data_samples=samples)
