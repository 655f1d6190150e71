"""CenterPoint head: class heatmaps + per-cell box regression on the BEV map; loss and decoding."""
from typing import Dict, List, Sequence

import torch
from torch import nn

from pc3d.registry import MODELS

from .losses import gaussian_focal_loss, masked_l1_loss
from .targets import BEVGrid, code_size, decode_boxes, encode_targets

# Output branches and their widths; concatenated in this order they are the regression columns of
# targets.py (CODE_SIZE), then "rot2" (sin 2h, cos 2h) with double_angle, then "vel" (vx, vy) with velocity.
REG_BRANCHES = (("center", 2), ("center_z", 1), ("dim", 3), ("rot", 2))


def _branch(c_in: int, c_mid: int, c_out: int, bias_init: float = 0.0) -> nn.Sequential:
    seq = nn.Sequential(nn.Conv2d(c_in, c_mid, 3, padding=1, bias=False), nn.BatchNorm2d(c_mid, eps=1e-3),
                        nn.ReLU(inplace=True), nn.Conv2d(c_mid, c_out, 1))
    nn.init.constant_(seq[-1].bias, bias_init)
    return seq


@MODELS.register_module()
class CenterHead(nn.Module):
    """Heatmap + regression head of CenterPoint (one task holding all classes).

    Args:
        in_channels: channels of the neck's BEV map (B, C, H, W).
        num_classes: K heatmap channels.
        pc_range, voxel_size, out_size_factor: define the output grid (voxel_size[:2] * out_size_factor cells).
        shared_channels / head_channels: widths of the shared conv and of each branch's hidden conv.
        loss_weights: dict(heatmap=..., bbox=...); code_weights: per-column L1 weights (8, + 2 with
            double_angle, + 2 with with_velocity; None = all 1).
        double_angle: also regress (sin 2h, cos 2h) and decode the box axis from it (see targets.py).
        with_velocity: also regress (vx, vy) m/s (nuScenes): GT boxes must then be (M, 9) and predicted
            boxes are (K, 9); unknown (NaN) GT velocities are left out of the loss.
        reg_radius: cells around each box's peak that also regress it (see ``encode_targets``; 0 = only
            the peak cell, as in CenterPoint).
        test_cfg: dict(score_threshold, pre_max_size, post_max_size, nms_iou_threshold (float or per-class list)).
    """

    def __init__(self, in_channels: int, num_classes: int, pc_range: Sequence[float], voxel_size: Sequence[float],
                 out_size_factor: int, shared_channels: int = 64, head_channels: int = 64,
                 loss_weights: Dict = None, code_weights: Sequence[float] = None,
                 max_objs: int = 500, min_overlap: float = 0.1, min_radius: int = 2, reg_radius: int = 0,
                 double_angle: bool = False, with_velocity: bool = False, test_cfg: Dict = None):
        super().__init__()
        self.num_classes = num_classes
        self.grid = BEVGrid.from_config(pc_range, voxel_size, out_size_factor)
        self.shared = nn.Sequential(nn.Conv2d(in_channels, shared_channels, 3, padding=1, bias=False),
                                    nn.BatchNorm2d(shared_channels, eps=1e-3), nn.ReLU(inplace=True))
        # Bias -2.19 = logit(0.1): heatmaps start near-empty so the focal loss does not explode (CenterNet).
        self.heatmap = _branch(shared_channels, head_channels, num_classes, bias_init=-2.19)
        self.double_angle = bool(double_angle)
        self.with_velocity = bool(with_velocity)
        self.branches = (REG_BRANCHES + ((("rot2", 2),) if self.double_angle else ())
                         + ((("vel", 2),) if self.with_velocity else ()))
        self.code_size = code_size(self.double_angle, self.with_velocity)
        self.reg = nn.ModuleDict({name: _branch(shared_channels, head_channels, c) for name, c in self.branches})
        self.loss_weights = {"heatmap": 1.0, "bbox": 2.0, **(loss_weights or {})}
        code_weights = (1.0,) * self.code_size if code_weights is None else tuple(code_weights)
        if len(code_weights) != self.code_size:
            extras = [n for n, on in (("double_angle", self.double_angle), ("with_velocity", self.with_velocity)) if on]
            raise ValueError(f"code_weights needs {self.code_size} entries"
                             f"{' (' + ', '.join(extras) + ')' if extras else ''}, got {len(code_weights)}")
        self.register_buffer("code_weights", torch.tensor(code_weights, dtype=torch.float32), persistent=False)
        if reg_radius < 0:
            raise ValueError(f"reg_radius must be >= 0, got {reg_radius}")
        self.max_objs, self.min_overlap, self.min_radius, self.reg_radius = max_objs, min_overlap, min_radius, reg_radius
        self.test_cfg = {"score_threshold": 0.1, "pre_max_size": 1000, "post_max_size": 200, "nms_iou_threshold": 0.2,
                         **(test_cfg or {})}

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """(B, C, H, W) -> dict(heatmap (B, K, H, W) logits, reg (B, code_size, H, W))."""
        if x.shape[-2:] != (self.grid.height, self.grid.width):
            raise ValueError(f"BEV map is {tuple(x.shape[-2:])}, the head's grid is ({self.grid.height}, "
                             f"{self.grid.width}): check pc_range, voxel_size and out_size_factor")
        x = self.shared(x)
        return dict(heatmap=self.heatmap(x), reg=torch.cat([self.reg[name](x) for name, _ in self.branches], dim=1))

    def loss(self, preds: Dict[str, torch.Tensor], gt_boxes: List[torch.Tensor],
             gt_labels: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Losses for per-sample GT lists (gt_boxes[b] (M_b, 7) float32, or (M_b, 9) with velocity;
        gt_labels[b] (M_b,) int64)."""
        targets = [encode_targets(b.float(), l.long(), self.grid, self.num_classes, self.max_objs, self.min_overlap,
                                  self.min_radius, self.reg_radius, self.double_angle, self.with_velocity)
                   for b, l in zip(gt_boxes, gt_labels)]
        heatmap, index, mask, target = (torch.stack(t) for t in zip(*targets))
        preds = {k: v.float() for k, v in preds.items()}  # losses in float32 even under autocast
        reg = preds["reg"].flatten(2).transpose(1, 2)  # (B, H*W, code_size)
        reg = torch.gather(reg, 1, index.unsqueeze(-1).expand(-1, -1, self.code_size))
        return dict(loss_heatmap=self.loss_weights["heatmap"] * gaussian_focal_loss(preds["heatmap"], heatmap),
                    loss_bbox=self.loss_weights["bbox"] * masked_l1_loss(reg, target, mask, self.code_weights))

    @torch.no_grad()
    def predict(self, preds: Dict[str, torch.Tensor]) -> List[Dict[str, torch.Tensor]]:
        """Per sample: dict(pred_boxes (K, 7) float32 ((K, 9) with velocity), pred_scores (K,) float32,
        pred_labels (K,) int64)."""
        return [self.decode_sample(preds["heatmap"][b], preds["reg"][b]) for b in range(preds["heatmap"].shape[0])]

    def decode_sample(self, heatmap: torch.Tensor, reg: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Top-K cells of one sample's heatmap (K, H, W) logits and reg (code_size, H, W) -> boxes after
        score threshold and per-class rotated BEV NMS."""
        from pc3d.ops import nms_bev_rotated

        cfg = self.test_cfg
        k_cls, h, w = heatmap.shape
        scores, labels, cell = top_cells(heatmap, cfg["pre_max_size"], cfg["score_threshold"])
        rows, cols = cell // w, cell % w
        boxes = decode_boxes(reg.flatten(1).t()[cell], rows, cols, self.grid, self.with_velocity)
        thr = cfg["nms_iou_threshold"]
        kept = []
        for c in range(k_cls):
            idx = torch.nonzero(labels == c).flatten()
            if idx.numel():
                t = thr[c] if isinstance(thr, (list, tuple)) else thr
                kept.append(idx[nms_bev_rotated(boxes[idx, :7].contiguous(), scores[idx].contiguous(), float(t))])
        kept = torch.cat(kept) if kept else torch.zeros(0, dtype=torch.long, device=scores.device)
        kept = kept[torch.argsort(scores[kept], descending=True)][: cfg["post_max_size"]]
        return dict(pred_boxes=boxes[kept], pred_scores=scores[kept], pred_labels=labels[kept].long())


def top_cells(heatmap: torch.Tensor, pre_max_size: int, score_threshold: float):
    """The ``pre_max_size`` best cells over all classes of a (K, H, W) heatmap of logits whose sigmoid score is
    >= ``score_threshold``, by descending score -> ``scores (M,)``, ``labels (M,)`` int64 class, ``cell (M,)`` int64
    flat ``row * W + col`` index."""
    h, w = heatmap.shape[1:]
    scores = torch.sigmoid(heatmap).flatten()
    top = torch.topk(scores, min(pre_max_size, scores.numel()))
    keep = top.values >= score_threshold
    scores, flat = top.values[keep], top.indices[keep]
    return scores, flat // (h * w), flat % (h * w)
