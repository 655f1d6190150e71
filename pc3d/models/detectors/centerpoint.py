"""CenterPoint: voxelize -> encode voxels -> [sparse 3D backbone] -> BEV -> 2D backbone -> neck -> center head."""
from typing import Dict, List, Optional

import torch
from mmengine.model import BaseModel

from pc3d.registry import MODELS


@MODELS.register_module()
class CenterPoint(BaseModel):
    """CenterPoint-Pillar (no ``backbone3d``) or CenterPoint-Voxel (with a sparse-conv ``backbone3d``).

    Each argument is a config dict built from ``pc3d.registry.MODELS``.

    forward(inputs=dict(points (N, 1 + C) float32 with column 0 the sample index, batch_size),
    data_samples=[dict per sample], mode):
      - 'loss': dict of scalar losses; data samples need ``gt_boxes (M, 7)`` and ``gt_labels (M,)``.
      - 'predict': per sample a dict with ``pred_boxes (K, 7)`` float32, ``pred_scores (K,)`` float32,
        ``pred_labels (K,)`` int64, plus every field of its data sample (GT, frame_id) for the metric.
      - 'tensor': the head's raw maps.
    """

    def __init__(self, voxelizer: Dict, voxel_encoder: Dict, bev: Dict, backbone2d: Dict, neck: Dict, head: Dict,
                 backbone3d: Optional[Dict] = None, data_preprocessor: Optional[Dict] = None, init_cfg=None):
        # Built from pc3d's registry here: BaseModel itself would look in mmengine's root registry.
        preprocessor = MODELS.build(data_preprocessor or dict(type="PointsDataPreprocessor"))
        super().__init__(data_preprocessor=preprocessor, init_cfg=init_cfg)
        self.voxelizer = MODELS.build(voxelizer)
        self.voxel_encoder = MODELS.build(voxel_encoder)
        self.backbone3d = MODELS.build(backbone3d) if backbone3d else None
        self.bev = MODELS.build(bev)
        self.backbone2d = MODELS.build(backbone2d)
        self.neck = MODELS.build(neck)
        self.head = MODELS.build(head)

    def extract_bev(self, points: torch.Tensor, batch_size: int) -> torch.Tensor:
        """Points (N, 1 + C) -> neck output (B, C', H, W)."""
        voxels = self.voxel_encoder(self.voxelizer(points, batch_size))
        if self.backbone3d is not None:
            voxels = self.backbone3d(voxels)
        return self.neck(self.backbone2d(self.bev(voxels)))

    def forward(self, inputs: Dict, data_samples: Optional[List[Dict]] = None, mode: str = "tensor"):
        if mode not in ("loss", "predict", "tensor"):
            raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")
        preds = self.head(self.extract_bev(inputs["points"], int(inputs["batch_size"])))
        if mode == "tensor":
            return preds
        if mode == "loss":
            if data_samples is None:
                raise ValueError("mode='loss' needs data_samples with gt_boxes and gt_labels")
            return self.head.loss(preds, [s["gt_boxes"] for s in data_samples], [s["gt_labels"] for s in data_samples])
        # Boxes are decoded and suppressed in float32 whatever precision the network ran in (autocast).
        with torch.autocast(_device_type(preds), enabled=False):
            results = self.head.predict(_to_float32(preds))
        for result, sample in zip(results, data_samples or [{}] * len(results)):
            for key, value in sample.items():
                result.setdefault(key, value)
        return results


def _to_float32(tree):
    """Every half/bfloat16 tensor in a nest of dicts, lists and tuples -> float32 (other leaves unchanged)."""
    if isinstance(tree, torch.Tensor):
        return tree.float() if tree.dtype in (torch.float16, torch.bfloat16) else tree
    if isinstance(tree, dict):
        return {k: _to_float32(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_to_float32(v) for v in tree)
    return tree


def _device_type(tree) -> str:
    """The device type of the first tensor in a nest of head outputs ('cpu' when there is none)."""
    if isinstance(tree, torch.Tensor):
        return tree.device.type
    values = tree.values() if isinstance(tree, dict) else tree if isinstance(tree, (list, tuple)) else ()
    for value in values:
        found = _device_type(value)
        if found != "cpu":
            return found
    return "cpu"
