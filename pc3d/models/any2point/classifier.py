"""Any2Point classifier: backbone token features -> pooled feature -> MLP head -> class logits."""
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import nn

from pc3d.registry import MODELS

from .encoder import Any2PointBackbone


def count_parameters(module: nn.Module, trainable: bool = True) -> int:
    """Number of parameters with ``requires_grad == trainable``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad == trainable)


@MODELS.register_module()
class Any2PointClassifier(BaseModel):
    """Object classification with Any2Point (or the tokenizer-only baseline when ``backbone.frozen`` is None).

    Args:
        backbone: kwargs of :class:`Any2PointBackbone`.
        num_classes: K.
        head_hidden: hidden width of the MLP head.
        dropout: dropout in the head.
        label_smoothing: of the cross-entropy loss.

    ``forward(points, label=None, mode)``: ``points`` (B, N, 3) float normalised xyz, ``label`` (B,) int64.
    mode 'tensor' -> (B, K) logits; 'loss' -> dict(loss); 'predict' -> list of B dicts with
    ``pred_label`` (int), ``gt_label`` (int or None) and ``scores`` ((K,) float softmax).
    """

    def __init__(self, backbone: dict, num_classes: int, head_hidden: int = 256, dropout: float = 0.3,
                 label_smoothing: float = 0.0, data_preprocessor: dict = None, init_cfg: dict = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        backbone = dict(backbone)
        backbone.pop("type", None)
        self.backbone = Any2PointBackbone(**backbone)
        c = self.backbone.embed_dim
        self.label_smoothing = label_smoothing
        # Head input: the CLS feature next to the max over point tokens.
        self.head = nn.Sequential(
            nn.LayerNorm(2 * c), nn.Linear(2 * c, head_hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(head_hidden, num_classes))

    def trainable_parameters(self) -> int:
        return count_parameters(self, True)

    def frozen_parameters(self) -> int:
        return count_parameters(self, False)

    def logits(self, points: torch.Tensor) -> torch.Tensor:
        """(B, N, 3) points -> (B, K) logits."""
        tokens, cls, _ = self.backbone(points)
        return self.head(torch.cat([cls, tokens.max(dim=1).values], dim=-1))

    def forward(self, points: torch.Tensor, label: torch.Tensor = None, mode: str = "tensor"):
        logits = self.logits(points)
        if mode == "tensor":
            return logits
        if mode == "loss":
            if label is None:
                raise ValueError("mode='loss' needs label (B,) int64")
            return dict(loss=F.cross_entropy(logits, label, label_smoothing=self.label_smoothing))
        if mode == "predict":
            scores = logits.softmax(-1)
            preds = scores.argmax(-1)
            return [dict(pred_label=int(preds[i]), gt_label=None if label is None else int(label[i]),
                         scores=scores[i].detach().cpu()) for i in range(len(preds))]
        raise ValueError(f"mode must be 'tensor', 'loss' or 'predict', got {mode!r}")
