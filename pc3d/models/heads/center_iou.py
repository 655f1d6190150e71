"""CenterPoint head with an IoU branch and the IoU-rectified score (OpenPCDet's ``CenterHead`` as DSVT uses it).

Per BEV cell the head predicts class heatmaps and ``center`` (2: offset in cells), ``center_z`` (1, metres),
``dim`` (3, log metres), ``rot`` (2: cos h, sin h) and ``iou`` (1, in [-1, 1]: 2 * IoU - 1). Decoding takes the
top K cells over classes x H x W, keeps those with score > ``score_threshold`` whose centre lies inside
``post_center_limit_range``, rectifies the score ``s^(1 - r_c) * clamp((iou + 1) / 2, 0, 1)^r_c`` with a per-class
rectifier ``r_c`` and runs rotated BEV NMS per class.
"""
from collections.abc import Mapping
from typing import Dict, List, Sequence

import torch
from torch import nn

from pc3d.registry import MODELS

from .losses import gaussian_focal_loss, masked_l1_loss
from .targets import BEVGrid, encode_targets

# Regression branches in the order of the regression target columns (offset x, y; z; log dx, dy, dz; cos, sin).
BRANCHES = (("center", 2), ("center_z", 1), ("dim", 3), ("rot", 2), ("iou", 1))


def _branch(channels: int, out_channels: int, num_conv: int, eps: float, momentum: float) -> nn.Sequential:
    """(num_conv - 1) x [Conv3x3 (no bias) - BN - ReLU], then Conv3x3 with bias to ``out_channels``."""
    layers = [nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                            nn.BatchNorm2d(channels, eps=eps, momentum=momentum), nn.ReLU())
              for _ in range(num_conv - 1)]
    return nn.Sequential(*layers, nn.Conv2d(channels, out_channels, 3, padding=1, bias=True))


def _diou_axis_aligned(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Distance-IoU of paired boxes (N, 7) with their BEV footprints taken axis-aligned (heading ignored), as
    DSVT's IoU regression loss uses it: IoU3d - |centre distance|^2 / |enclosing box diagonal|^2, in [-1, 1]."""
    lo_p, hi_p = pred[:, :3] - pred[:, 3:6] / 2, pred[:, :3] + pred[:, 3:6] / 2
    lo_g, hi_g = gt[:, :3] - gt[:, 3:6] / 2, gt[:, :3] + gt[:, 3:6] / 2
    inter = (torch.minimum(hi_p, hi_g) - torch.maximum(lo_p, lo_g)).clamp(min=0).prod(dim=1)
    union = pred[:, 3:6].prod(dim=1) + gt[:, 3:6].prod(dim=1) - inter
    centre = ((gt[:, :3] - pred[:, :3]) ** 2).sum(dim=1)
    outer = ((torch.maximum(hi_p, hi_g) - torch.minimum(lo_p, lo_g)).clamp(min=0) ** 2).sum(dim=1)
    return (inter / union - centre / outer).clamp(-1.0, 1.0)


@MODELS.register_module()
class CenterHeadIoU(nn.Module):
    """One-task CenterPoint head with an IoU branch (DSVT's Waymo head).

    A shared Conv3x3 (no bias) - BN - ReLU to ``shared_channels``, then one branch per output (``hm`` with
    ``num_classes`` channels, ``center`` 2, ``center_z`` 1, ``dim`` 3, ``rot`` 2, ``iou`` 1), each
    (num_conv - 1) x [Conv3x3 - BN - ReLU] + Conv3x3.

    Args:
        in_channels: channels of the BEV map (B, C, H, W).
        num_classes: heatmap channels K (Waymo: Vehicle, Pedestrian, Cyclist).
        pc_range, voxel_size, out_size_factor: the output grid (cells of voxel_size[:2] * out_size_factor).
        shared_channels: width of the shared conv and of every branch.
        num_conv: convs per regression branch; num_hm_conv: convs of the heatmap branch.
        bn_eps, bn_momentum: BatchNorm2d settings (DSVT: 1e-3, 0.01).
        with_iou: the IoU branch (and its losses, and the score rectification when ``iou_rectifier`` is set).
        loss_weights: dict(heatmap, bbox, iou, iou_reg): the focal heatmap loss, the L1 box-code loss, the L1 loss
            of the IoU branch against 2 * IoU3d(decoded box, GT) - 1 and the DIoU box loss (weights as DSVT:
            1, 2, 1, 2); code_weights: per-column L1 weights of the 8 box-code columns.
        test_cfg: dict(score_threshold (> is kept), max_per_sample (top K before NMS),
            post_center_limit_range [x0, y0, z0, x1, y1, z1] (inclusive), iou_rectifier (per class r_c, or None
            for the plain score), nms_iou_threshold (per class), nms_pre_max_size, nms_post_max_size (per class),
            nms_swap_size_xy: NMS measures the overlap of each box turned by 90 degrees about its centre (dx and dy
            exchanged). True is OpenPCDet's ``multi_classes_nms_mmdet`` as DSVT runs it: its conversion to the old
            mmdet3d BEV box ``(x1, y1, x2, y2, -heading + pi/2)`` and that kernel's clockwise rotation turn every
            box by -90 degrees; a checkpoint's published APs were measured with it. False: the boxes themselves).

    forward((B, C, H, W)) -> dict(heatmap (B, K, H, W) logits, center (B, 2, H, W), center_z (B, 1, H, W),
    dim (B, 3, H, W), rot (B, 2, H, W), iou (B, 1, H, W)).
    """

    def __init__(self, in_channels: int, num_classes: int, pc_range: Sequence[float], voxel_size: Sequence[float],
                 out_size_factor: int = 1, shared_channels: int = 64, num_conv: int = 2, num_hm_conv: int = 2,
                 bn_eps: float = 1e-3, bn_momentum: float = 0.01, with_iou: bool = True, loss_weights: Dict = None,
                 code_weights: Sequence[float] = None, max_objs: int = 500, min_overlap: float = 0.1,
                 min_radius: int = 2, test_cfg: Dict = None):
        super().__init__()
        self.num_classes = int(num_classes)
        self.grid = BEVGrid.from_config(pc_range, voxel_size, out_size_factor)
        self.with_iou = bool(with_iou)
        self.shared = nn.Sequential(nn.Conv2d(in_channels, shared_channels, 3, padding=1, bias=False),
                                    nn.BatchNorm2d(shared_channels, eps=bn_eps, momentum=bn_momentum), nn.ReLU())
        self.branch_names = tuple(n for n, _ in BRANCHES if self.with_iou or n != "iou") + ("heatmap",)
        widths = dict(BRANCHES, heatmap=self.num_classes)
        self.branches = nn.ModuleDict({
            name: _branch(shared_channels, widths[name], num_hm_conv if name == "heatmap" else num_conv,
                          bn_eps, bn_momentum) for name in self.branch_names})
        # Heatmap bias -2.19 = logit(0.1): the heatmaps start near-empty so the focal loss stays bounded (CenterNet);
        # the regression convs start with Kaiming-normal weights and zero bias.
        nn.init.constant_(self.branches["heatmap"][-1].bias, -2.19)
        for name in self.branch_names:
            if name != "heatmap":
                for m in self.branches[name].modules():
                    if isinstance(m, nn.Conv2d):
                        nn.init.kaiming_normal_(m.weight)
                        if m.bias is not None:
                            nn.init.zeros_(m.bias)
        self.loss_weights = {"heatmap": 1.0, "bbox": 2.0, "iou": 1.0, "iou_reg": 2.0, **(loss_weights or {})}
        code_weights = (1.0,) * 8 if code_weights is None else tuple(float(w) for w in code_weights)
        if len(code_weights) != 8:
            raise ValueError(f"CenterHeadIoU: code_weights needs 8 entries, got {len(code_weights)}")
        self.register_buffer("code_weights", torch.tensor(code_weights), persistent=False)
        self.max_objs, self.min_overlap, self.min_radius = max_objs, min_overlap, min_radius
        cfg = dict(score_threshold=0.1, max_per_sample=500, post_center_limit_range=[-80, -80, -10, 80, 80, 10],
                   iou_rectifier=[0.68, 0.71, 0.65] if self.with_iou else None,
                   nms_iou_threshold=[0.7, 0.6, 0.55], nms_pre_max_size=4096, nms_post_max_size=500,
                   nms_swap_size_xy=True)
        cfg.update(test_cfg or {})
        for key in ("iou_rectifier", "nms_iou_threshold"):
            if cfg[key] is not None and not isinstance(cfg[key], (int, float)) and len(cfg[key]) != self.num_classes:
                raise ValueError(f"CenterHeadIoU: test_cfg.{key} needs one value per class ({self.num_classes}), "
                                 f"got {cfg[key]}")
        if cfg["iou_rectifier"] is not None and not self.with_iou:
            raise ValueError("CenterHeadIoU: test_cfg.iou_rectifier needs with_iou=True")
        self.test_cfg = cfg

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        if x.shape[-2:] != (self.grid.height, self.grid.width):
            raise ValueError(f"BEV map is {tuple(x.shape[-2:])}, the head's grid is ({self.grid.height}, "
                             f"{self.grid.width}): check pc_range, voxel_size and out_size_factor")
        x = self.shared(x)
        return {name: self.branches[name](x) for name in self.branch_names}

    # ----------------------------------------------------------------------------------------------- decoding
    def _boxes_at(self, preds: Dict[str, torch.Tensor], b: int, cells: torch.Tensor) -> torch.Tensor:
        """Boxes (K, 7) decoded at flat cells (K,) of sample b: centre = (col + offset) * cell + origin,
        dims = exp(dim), heading = atan2(sin, cos)."""
        w = self.grid.width
        gather = {k: preds[k][b].flatten(1)[:, cells].t() for k in ("center", "center_z", "dim", "rot")}
        xs = (cells % w).float() + gather["center"][:, 0]
        ys = torch.div(cells, w, rounding_mode="floor").float() + gather["center"][:, 1]
        xs = xs * self.grid.cell_x + self.grid.x0
        ys = ys * self.grid.cell_y + self.grid.y0
        heading = torch.atan2(gather["rot"][:, 1], gather["rot"][:, 0])
        return torch.cat([xs[:, None], ys[:, None], gather["center_z"], gather["dim"].exp(), heading[:, None]], 1)

    @torch.no_grad()
    def predict_pre_nms(self, preds: Dict[str, torch.Tensor]) -> List[Dict[str, torch.Tensor]]:
        """Per sample, the decoded candidates before NMS, in top-K order:
        dict(pred_boxes (K', 7), pred_scores (K',) (rectified when ``iou_rectifier`` is set), pred_labels (K',)
        int64 in [0, num_classes), raw_scores (K',) sigmoid heatmap, raw_iou (K',) (iou + 1) / 2 (with the IoU
        branch)). K' <= max_per_sample: the candidates above the score threshold inside the centre range.

        The top K runs in two stages, K per class over H x W and then K over the classes' K x num_classes, with
        the label = position // K of the second stage (OpenPCDet's ``_topk``, so ties fall the same way)."""
        cfg = self.test_cfg
        heat = torch.sigmoid(preds["heatmap"].float())
        bsz, k_cls, h, w = heat.shape
        k = min(int(cfg["max_per_sample"]), h * w)
        per_class_scores, per_class_cells = torch.topk(heat.flatten(2), k)  # (B, K_cls, k)
        scores, pos = torch.topk(per_class_scores.view(bsz, -1), k)  # (B, k)
        labels = torch.div(pos, k, rounding_mode="floor")
        cells = torch.gather(per_class_cells.view(bsz, -1), 1, pos)
        limit = torch.tensor(cfg["post_center_limit_range"], dtype=torch.float32, device=heat.device)
        out = []
        for b in range(bsz):
            boxes = self._boxes_at(preds, b, cells[b])
            keep = (boxes[:, :3] >= limit[:3]).all(1) & (boxes[:, :3] <= limit[3:]).all(1)
            keep &= scores[b] > cfg["score_threshold"]
            result = dict(pred_boxes=boxes[keep], raw_scores=scores[b][keep], pred_labels=labels[b][keep].long())
            score = result["raw_scores"]
            if self.with_iou:
                iou = (preds["iou"][b].flatten(1)[0, cells[b][keep]] + 1) * 0.5
                result["raw_iou"] = iou
                if cfg["iou_rectifier"] is not None:
                    r = score.new_tensor(cfg["iou_rectifier"])[result["pred_labels"]]
                    score = torch.pow(score, 1 - r) * torch.pow(iou.clamp(0.0, 1.0), r)
            result["pred_scores"] = score
            out.append(result)
        return out

    @torch.no_grad()
    def predict(self, preds: Dict[str, torch.Tensor]) -> List[Dict[str, torch.Tensor]]:
        """Per sample dict(pred_boxes (K, 7) float32, pred_scores (K,) float32, pred_labels (K,) int64 in
        [0, num_classes)): :meth:`predict_pre_nms`, then per class greedy rotated BEV NMS (the class's
        ``nms_pre_max_size`` best candidates in, at most ``nms_post_max_size`` out; overlaps of the boxes with dx and
        dy exchanged when ``nms_swap_size_xy``), classes concatenated in order."""
        from pc3d.ops import nms_bev_rotated

        cfg = self.test_cfg

        def per_class(value, c):
            return value[c] if isinstance(value, (list, tuple)) else value

        results = []
        for cand in self.predict_pre_nms(preds):
            kept = []
            for c in range(self.num_classes):
                idx = torch.nonzero(cand["pred_labels"] == c).flatten()
                if not idx.numel():
                    continue
                order = torch.argsort(cand["pred_scores"][idx], descending=True, stable=True)
                idx = idx[order][: int(per_class(cfg["nms_pre_max_size"], c))]
                boxes = cand["pred_boxes"][idx]
                if cfg["nms_swap_size_xy"]:
                    boxes = boxes[:, [0, 1, 2, 4, 3, 5, 6]]
                keep = nms_bev_rotated(boxes.contiguous(), cand["pred_scores"][idx].contiguous(),
                                       float(per_class(cfg["nms_iou_threshold"], c)))
                kept.append(idx[keep][: int(per_class(cfg["nms_post_max_size"], c))])
            kept = torch.cat(kept) if kept else torch.zeros(0, dtype=torch.long, device=cand["pred_scores"].device)
            results.append(dict(pred_boxes=cand["pred_boxes"][kept], pred_scores=cand["pred_scores"][kept],
                                pred_labels=cand["pred_labels"][kept]))
        return results

    # --------------------------------------------------------------------------------------------------- loss
    def loss(self, preds: Dict[str, torch.Tensor], gt_boxes: List[torch.Tensor],
             gt_labels: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Losses for per-sample GT lists (gt_boxes[b] (M_b, 7) float32, gt_labels[b] (M_b,) int64 in
        [0, num_classes)): focal heatmap loss, L1 on the 8 box-code columns at the GT centre cells, and with the
        IoU branch the L1 of the IoU prediction against 2 * IoU3d(decoded box, GT) - 1 (target without gradient)
        and 1 - DIoU of the decoded boxes (axis-aligned footprints)."""
        from pc3d.ops import iou_3d_rotated

        targets = [encode_targets(b[:, :7].float(), l.long(), self.grid, self.num_classes, self.max_objs,
                                  self.min_overlap, self.min_radius) for b, l in zip(gt_boxes, gt_labels)]
        heatmap, index, mask, target = (torch.stack(t) for t in zip(*targets))
        target = target[..., [0, 1, 2, 3, 4, 5, 7, 6]]  # (sin h, cos h) -> this head's (cos h, sin h)
        preds = {k: v.float() for k, v in preds.items()}
        code = torch.cat([preds[n] for n in ("center", "center_z", "dim", "rot")], dim=1).flatten(2).transpose(1, 2)
        code = torch.gather(code, 1, index.unsqueeze(-1).expand(-1, -1, 8))  # (B, E, 8)
        losses = dict(loss_heatmap=self.loss_weights["heatmap"] * gaussian_focal_loss(preds["heatmap"], heatmap),
                      loss_bbox=self.loss_weights["bbox"] * masked_l1_loss(code, target, mask, self.code_weights))
        if not self.with_iou:
            return losses
        w = self.grid.width
        rows, cols = torch.div(index, w, rounding_mode="floor").float(), (index % w).float()

        def boxes_of(c):  # (B, E, 8) box code at the cells -> (B, E, 7) boxes
            x = (cols + c[..., 0]) * self.grid.cell_x + self.grid.x0
            y = (rows + c[..., 1]) * self.grid.cell_y + self.grid.y0
            dims = c[..., 3:6].clamp(max=5.0).exp()  # clamp: an untrained branch must not overflow
            heading = torch.atan2(c[..., 7], c[..., 6])
            return torch.cat([x[..., None], y[..., None], c[..., 2:3], dims, heading[..., None]], dim=-1)

        pred_boxes, gt = boxes_of(code)[mask], boxes_of(target)[mask]
        num = mask.sum().clamp(min=1).float()
        iou_pred = torch.gather(preds["iou"].flatten(2).transpose(1, 2), 1, index.unsqueeze(-1))[..., 0][mask]
        if pred_boxes.shape[0]:
            with torch.no_grad():
                pb = pred_boxes.detach().clone()
                pb[:, 3:6] = pb[:, 3:6].clamp(min=0)
                iou_target = torch.diagonal(iou_3d_rotated(pb, gt.detach()))
        else:
            iou_target = iou_pred.detach()
        losses["loss_iou"] = self.loss_weights["iou"] * (iou_pred - (2 * iou_target - 1)).abs().sum() / num
        losses["loss_iou_reg"] = self.loss_weights["iou_reg"] * (1 - _diou_axis_aligned(pred_boxes, gt)).sum() / num
        return losses

    # -------------------------------------------------------------------------------------------- conversion
    def convert_official_state(self, official: Mapping, source: str) -> Dict[str, torch.Tensor]:
        """OpenPCDet ``dense_head.*`` (``shared_conv.*``, ``heads_list.0.{center, center_z, dim, rot, iou, hm}.*``)
        -> this module's state (``shared.*``, ``branches.{..., heatmap}.*``)."""
        out = {}
        for key in self.state_dict():
            top, _, rest = key.partition(".")
            if top == "shared":
                out[key] = official["shared_conv." + rest]
            else:
                name, _, tail = rest.partition(".")
                out[key] = official[f"heads_list.0.{'hm' if name == 'heatmap' else name}.{tail}"]
        return out
