"""Any2Point as a 3D backbone for per-point segmentation: token features propagated back to the points.

Each point takes the inverse-distance-weighted mean of its ``k`` nearest tokens' features (PointNet++
feature propagation), concatenated with an embedding of its own offset to the nearest token centre,
and an MLP classifies it.
"""
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import nn

from pc3d.registry import MODELS

from .classifier import count_parameters
from .encoder import Any2PointBackbone


def propagate(points: torch.Tensor, centres: torch.Tensor, feats: torch.Tensor, k: int = 3):
    """Inverse-distance interpolation of token features at the points.

    Args:
        points: (B, N, 3) float xyz; centres: (B, M, 3) float token centres; feats: (B, M, C).
        k: neighbouring tokens per point (clamped to M).

    Returns:
        (B, N, C) interpolated features and (B, N, 3) offset of each point to its nearest centre.
    """
    k = min(k, centres.shape[1])
    d, idx = torch.cdist(points, centres).topk(k, dim=-1, largest=False)  # (B, N, k)
    w = 1.0 / (d + 1e-8)
    w = w / w.sum(-1, keepdim=True)
    batch = torch.arange(points.shape[0], device=points.device)[:, None, None]
    out = (feats[batch, idx] * w.unsqueeze(-1)).sum(2)
    return out, points - centres[batch[..., 0], idx[..., 0]]


@MODELS.register_module()
class Any2PointSegmentor(BaseModel):
    """Per-point segmentation head on :class:`Any2PointBackbone` token features.

    Args:
        backbone: kwargs of :class:`Any2PointBackbone` (``frozen=None`` = tokenizer-only baseline).
        num_classes: K point classes.
        head_hidden: MLP width; k: tokens interpolated per point.

    ``forward(points, point_labels=None, mode, **unused)``: ``points`` (B, N, 3) float, ``point_labels``
    (B, N) int64. 'tensor' -> (B, N, K) logits; 'loss' -> dict(loss); 'predict' -> list of B dicts with
    ``pred_point_labels`` and ``gt_point_labels`` ((N,) int64 tensors; gt None without labels).
    """

    def __init__(self, backbone: dict, num_classes: int, head_hidden: int = 128, k: int = 3,
                 data_preprocessor: dict = None, init_cfg: dict = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        backbone = dict(backbone)
        backbone.pop("type", None)
        self.backbone = Any2PointBackbone(**backbone)
        c = self.backbone.embed_dim
        self.k = k
        self.offset_embed = nn.Sequential(nn.Linear(3, 32), nn.GELU(), nn.Linear(32, 32))
        self.head = nn.Sequential(nn.LayerNorm(2 * c + 32), nn.Linear(2 * c + 32, head_hidden), nn.GELU(),
                                  nn.Linear(head_hidden, num_classes))

    def trainable_parameters(self) -> int:
        return count_parameters(self, True)

    def frozen_parameters(self) -> int:
        return count_parameters(self, False)

    def logits(self, points: torch.Tensor) -> torch.Tensor:
        """(B, N, 3) points -> (B, N, K) logits."""
        xyz = points[..., :3]
        tokens, cls, centres = self.backbone(xyz)
        feats, offset = propagate(xyz, centres, tokens, self.k)
        glob = cls.unsqueeze(1).expand(-1, xyz.shape[1], -1)  # shape context for every point
        return self.head(torch.cat([feats, glob, self.offset_embed(offset)], dim=-1))

    def forward(self, points: torch.Tensor, point_labels: torch.Tensor = None, mode: str = "tensor", **unused):
        logits = self.logits(points)
        if mode == "tensor":
            return logits
        if mode == "loss":
            if point_labels is None:
                raise ValueError("mode='loss' needs point_labels (B, N) int64")
            return dict(loss=F.cross_entropy(logits.flatten(0, 1), point_labels.flatten()))
        if mode == "predict":
            pred = logits.argmax(-1).cpu()
            return [dict(pred_point_labels=pred[i],
                         gt_point_labels=None if point_labels is None else point_labels[i].cpu())
                    for i in range(len(pred))]
        raise ValueError(f"mode must be 'tensor', 'loss' or 'predict', got {mode!r}")
