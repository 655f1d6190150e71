"""TR3D's sparse neck and anchor-free head: per-voxel class scores and axis-aligned boxes, indoor scenes.

Neck (``TR3DNeck``): top-down over the encoder's levels ``first_level..L-1``. The coarsest level is upsampled
2x (generative: a stride-2 transposed conv creates all 8 children of every coarse voxel, so voxels appear in
the empty space around surfaces, where box centres of chairs, beds or tables often lie; or ``inverse``: back
onto the finer level's own voxels), added to the finer level (on the union of both voxel sets), refined by a
3x3x3 conv; every level but the coarsest gets an output 3x3x3 conv to ``out_channels``. TR3D's neck keeps
the encoder levels 2, 3, 4 and outputs at levels 2 and 3.

Head (``TR3DHead``): a 1x1 linear layer per task on every output voxel:
    cls (V, num_classes) logits (sigmoid, focal loss),
    reg (V, 6) -> box (cx, cy, cz) = voxel centre + reg[:, :3], (dx, dy, dz) = exp(reg[:, 3:6]) (metres).
Assignment (centre sampling, TR3D): every class has a fixed output level (``label2level``: small objects on
the fine level, large ones on the coarse one); each GT box takes the ``top_k`` voxels of its level nearest
to its centre; a voxel chosen by several boxes goes to the one whose centre is nearest; the rest are
background. Losses: sigmoid focal loss summed over voxels and classes / number of positives; axis-aligned
DIoU loss (1 - IoU + centre distance^2 / enclosing-box diagonal^2) averaged over positives.
Inference: sigmoid scores, the ``nms_pre`` voxels with the highest max score, class-wise axis-aligned NMS.
"""
import math
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from pc3d.ops.aligned_boxes import aligned_boxes_to_corners, multiclass_nms_aligned_3d
from pc3d.registry import MODELS

from ..backbones3d._spconv_compat import import_spconv

# TR3D's ScanNet level per class (0: fine, 1: coarse), ScanNet's 18 detection classes in benchmark order.
SCANNET_LABEL2LEVEL = (0, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 1, 0)


def _bn(c: int) -> nn.Module:
    return nn.BatchNorm1d(c, eps=1e-3, momentum=0.01)


def sparse_union_add(a, b):
    """Sum of two sparse tensors on the same grid, on the union of their voxel sets.

    Args:
        a, b: ``spconv.SparseConvTensor`` with equal channels, spatial shape and batch size.
    Returns:
        SparseConvTensor (U, C): the union's voxels in (b, z, y, x) lexicographic order; features a + b
        (a voxel in one set only keeps that set's features).
    """
    spconv = import_spconv()
    if list(a.spatial_shape) != list(b.spatial_shape) or a.features.shape[1] != b.features.shape[1]:
        raise ValueError(f"sparse_union_add: spatial shapes {list(a.spatial_shape)} / {list(b.spatial_shape)}, "
                         f"channels {a.features.shape[1]} / {b.features.shape[1]} must match")
    d, h, w = (int(s) for s in a.spatial_shape)

    def key(idx):
        idx = idx.long()
        return ((idx[:, 0] * d + idx[:, 1]) * h + idx[:, 2]) * w + idx[:, 3]

    uniq, inv = torch.unique(torch.cat([key(a.indices), key(b.indices)]), return_inverse=True)
    feats = a.features.new_zeros(len(uniq), a.features.shape[1])
    feats = feats.index_add(0, inv, torch.cat([a.features, b.features]))
    coords = torch.stack([uniq // (d * h * w), uniq // (h * w) % d, uniq // w % h, uniq % w], 1).int()
    return spconv.SparseConvTensor(feats, coords, [d, h, w], a.batch_size)


@MODELS.register_module()
class TR3DNeck(nn.Module):
    """Top-down sparse neck.

    Args:
        in_channels: widths of all encoder levels, e.g. (64, 128, 128, 128).
        out_channels: width of every output level (128 in TR3D).
        first_level: encoder levels before it are not used (1 in TR3D).
        upsample: 'generative' (stride-2 transposed conv, TR3D) or 'inverse' (inverse conv onto the finer
            level's own voxels; needs an encoder whose downsampling convs have indice keys ``down{i}``,
            as ``SparseResNetEncoder``'s).

    forward(list of SparseConvTensor, one per encoder level) -> list of SparseConvTensor (V_l, out_channels)
    for encoder levels ``first_level .. L-2`` (or the single level when only one is used), finest first.
    """

    def __init__(self, in_channels: Sequence[int] = (64, 128, 128, 128), out_channels: int = 128,
                 first_level: int = 1, upsample: str = "generative"):
        super().__init__()
        if upsample not in ("generative", "inverse"):
            raise ValueError(f"upsample must be 'generative' or 'inverse', got {upsample!r}")
        if not 0 <= first_level < len(in_channels):
            raise ValueError(f"first_level {first_level} out of range for {len(in_channels)} encoder levels")
        spconv = import_spconv()
        self.first_level, self.upsample = first_level, upsample
        chans = list(in_channels)[first_level:]
        self.num_outs = max(len(chans) - 1, 1)
        self.up, self.lateral, self.out = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for i in range(len(chans) - 1):  # i: output index = finer level of each top-down step
            level = first_level + i
            if upsample == "generative":
                up = spconv.SparseConvTranspose3d(chans[i + 1], chans[i], 2, stride=2, bias=False)
            else:
                up = spconv.SparseInverseConv3d(chans[i + 1], chans[i], 2, bias=False,
                                                indice_key=f"down{level + 1}")
            self.up.append(spconv.SparseSequential(up, _bn(chans[i]), nn.ReLU(inplace=True)))
            self.lateral.append(self._block(chans[i], chans[i], f"neck{level}"))
            self.out.append(self._block(chans[i], out_channels, f"neck{level}"))
        if len(chans) == 1:  # a single-level encoder: only the output conv
            self.out.append(self._block(chans[0], out_channels, f"neck{first_level}"))
        self.out_channels = out_channels

    @staticmethod
    def _block(cin, cout, key):
        spconv = import_spconv()
        return spconv.SparseSequential(spconv.SubMConv3d(cin, cout, 3, padding=1, bias=False, indice_key=key),
                                       _bn(cout), nn.ReLU(inplace=True))

    def forward(self, feats: List) -> List:
        xs = list(feats)[self.first_level:]
        if len(xs) == 1:
            return [self.out[0](xs[0])]
        x, outs = xs[-1], []
        for i in range(len(xs) - 2, -1, -1):
            x = self.up[i](x)
            if self.upsample == "inverse":  # same voxels, same order as the finer level
                x = x.replace_feature(x.features + xs[i].features)
            else:
                x = sparse_union_add(x, xs[i])
            x = self.lateral[i](x)
            outs.append(self.out[i](x))
        return outs[::-1]


def sigmoid_focal_loss_sum(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25,
                           gamma: float = 2.0) -> torch.Tensor:
    """Sum over elements of the sigmoid focal loss.

    Args:
        logits: (N, C); target: (N, C) in {0, 1}.
    Returns:
        scalar: sum of -alpha_t (1 - p_t)^gamma log p_t.
    """
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    alpha_t = alpha * target + (1 - alpha) * (1 - target)
    return (alpha_t * (1 - p_t).pow(gamma) * ce).sum()


def aligned_diou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-pair axis-aligned 3D DIoU loss: 1 - IoU + |c_p - c_t|^2 / diag(enclosing box)^2.

    Args:
        pred, target: (N, 6) [cx, cy, cz, dx, dy, dz], row i against row i.
    Returns:
        (N,) loss in [0, 2].
    """
    a, b = aligned_boxes_to_corners(pred), aligned_boxes_to_corners(target)
    inter = (torch.minimum(a[:, 3:], b[:, 3:]) - torch.maximum(a[:, :3], b[:, :3])).clamp(min=0).prod(1)
    union = pred[:, 3:6].prod(1) + target[:, 3:6].prod(1) - inter
    iou = inter / (union + eps)
    diag = (torch.maximum(a[:, 3:], b[:, 3:]) - torch.minimum(a[:, :3], b[:, :3])).pow(2).sum(1)
    dist = (pred[:, :3] - target[:, :3]).pow(2).sum(1)
    return 1 - iou + dist / (diag + eps)


def assign_centre_topk(points: torch.Tensor, levels: torch.Tensor, gt_boxes: torch.Tensor, gt_labels: torch.Tensor,
                       label2level: torch.Tensor, top_k: int) -> torch.Tensor:
    """TR3D's centre-sampling assignment for one scene.

    Args:
        points: (N, 3) voxel centres (metres), all output levels; levels: (N,) int64 output level of each.
        gt_boxes: (M, 6+) [cx, cy, cz, dx, dy, dz, ...]; gt_labels: (M,) int64.
        label2level: (num_classes,) int64 output level of each class; top_k: voxels per box.
    Returns:
        (N,) int64: index of the box each voxel regresses, -1 for background. A box takes the ``top_k``
        voxels of its class's level nearest to its centre (all of them if the level has fewer; equal
        distances: ``torch.topk``'s order); a voxel taken by several boxes goes to the nearest centre
        (lower box index on a tie).
    """
    n, m = len(points), len(gt_boxes)
    if m == 0 or n == 0:
        return torch.full((n,), -1, dtype=torch.long, device=points.device)
    dist = (points[:, None, :] - gt_boxes[None, :, :3].to(points.dtype)).pow(2).sum(-1)  # (N, M)
    same_level = levels[:, None] == label2level[gt_labels][None, :]
    inf = torch.tensor(float("inf"), dtype=dist.dtype, device=dist.device)
    dist = torch.where(same_level, dist, inf)
    k = min(int(top_k), n)
    idx = torch.topk(dist, k, dim=0, largest=False).indices  # (k, M)
    chosen = torch.zeros_like(same_level)
    chosen.scatter_(0, idx, True)
    dist = torch.where(chosen & same_level, dist, inf)
    best, arg = dist.min(1)
    return torch.where(torch.isfinite(best), arg, torch.full_like(arg, -1))


@MODELS.register_module()
class TR3DHead(nn.Module):
    """Per-voxel classification and axis-aligned box regression over the neck's levels.

    Args:
        in_channels: neck width. num_classes: 18 for ScanNet.
        label2level: output level of each class (TR3D's ScanNet split by default; all 0 for one level).
        top_k: voxels assigned per GT box (TR3D's ``pts_center_threshold`` = 6).
        focal_alpha, focal_gamma: sigmoid focal loss (0.25, 2.0). bbox_loss_weight: DIoU weight.
        nms_pre: voxels kept (by max class score) before NMS, <= 0 keeps all; score_threshold,
        iou_threshold: class-wise NMS (TR3D: 1000, 0.01, 0.5).

    forward(list of (V_l, in_channels) features) -> (cls list of (V_l, num_classes), reg list of (V_l, 6)).
    """

    def __init__(self, in_channels: int = 128, num_classes: int = 18,
                 label2level: Sequence[int] = SCANNET_LABEL2LEVEL, top_k: int = 6, focal_alpha: float = 0.25,
                 focal_gamma: float = 2.0, bbox_loss_weight: float = 1.0, nms_pre: int = 1000,
                 score_threshold: float = 0.01, iou_threshold: float = 0.5):
        super().__init__()
        if len(label2level) != num_classes:
            raise ValueError(f"label2level needs one level per class ({num_classes}), got {len(label2level)}")
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        self.num_classes, self.top_k = num_classes, int(top_k)
        self.register_buffer("label2level", torch.as_tensor(label2level, dtype=torch.long), persistent=False)
        self.focal_alpha, self.focal_gamma, self.bbox_loss_weight = focal_alpha, focal_gamma, bbox_loss_weight
        self.nms_pre, self.score_threshold, self.iou_threshold = nms_pre, score_threshold, iou_threshold
        self.conv_cls = nn.Linear(in_channels, num_classes)
        self.conv_reg = nn.Linear(in_channels, 6)
        nn.init.normal_(self.conv_cls.weight, std=0.01)
        nn.init.constant_(self.conv_cls.bias, -math.log((1 - 0.01) / 0.01))  # prior probability 0.01
        nn.init.normal_(self.conv_reg.weight, std=0.01)
        nn.init.zeros_(self.conv_reg.bias)

    def forward(self, feats: Sequence[torch.Tensor]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        return [self.conv_cls(f) for f in feats], [self.conv_reg(f) for f in feats]

    @staticmethod
    def decode(points: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
        """(V, 3) voxel centres and (V, 6) regressions -> (V, 6) boxes [cx, cy, cz, dx, dy, dz]."""
        return torch.cat([points + reg[:, :3], torch.exp(reg[:, 3:6])], 1)

    def loss(self, cls: torch.Tensor, reg: torch.Tensor, points: torch.Tensor, levels: torch.Tensor,
             batch_idx: torch.Tensor, gt_boxes: Sequence[torch.Tensor], gt_labels: Sequence[torch.Tensor]) -> Dict:
        """Losses of a batch.

        Args:
            cls: (V, num_classes), reg: (V, 6), points: (V, 3) voxel centres, levels: (V,) output level,
                batch_idx: (V,) sample, all output levels concatenated.
            gt_boxes: per sample (M_i, 6+); gt_labels: per sample (M_i,) in [0, num_classes).
        Returns:
            dict(loss_cls, loss_bbox) scalars.
        """
        target = torch.zeros_like(cls)
        pos_pred, pos_tgt = [], []
        for i, (boxes, labels) in enumerate(zip(gt_boxes, gt_labels)):
            sel = torch.nonzero(batch_idx == i).reshape(-1)
            boxes = boxes.to(cls.device, cls.dtype)[:, :6]
            labels = labels.to(cls.device).long()
            if len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
                raise ValueError(f"gt_labels of sample {i} must be in [0, {self.num_classes}), got "
                                 f"{labels.min().item()}..{labels.max().item()}")
            assigned = assign_centre_topk(points[sel], levels[sel], boxes, labels, self.label2level, self.top_k)
            pos = assigned >= 0
            rows = sel[pos]
            target[rows, labels[assigned[pos]]] = 1.0
            pos_pred.append(self.decode(points[rows], reg[rows]))
            pos_tgt.append(boxes[assigned[pos]])
        num_pos = sum(len(p) for p in pos_pred)
        loss_cls = sigmoid_focal_loss_sum(cls, target, self.focal_alpha, self.focal_gamma) / max(num_pos, 1)
        if num_pos:
            loss_bbox = aligned_diou_loss(torch.cat(pos_pred), torch.cat(pos_tgt)).mean()
        else:  # no GT box in the batch: a zero that still reaches the regression branch
            loss_bbox = reg.sum() * 0.0
        return {"loss_cls": loss_cls, "loss_bbox": self.bbox_loss_weight * loss_bbox}

    @torch.no_grad()
    def predict(self, cls: torch.Tensor, reg: torch.Tensor, points: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Boxes of one scene.

        Args:
            cls: (V, num_classes) logits, reg: (V, 6), points: (V, 3) of that scene's voxels.
        Returns:
            boxes (K, 6) [cx, cy, cz, dx, dy, dz], scores (K,), labels (K,) int64.
        """
        scores = cls.sigmoid()
        if 0 < self.nms_pre < len(scores):
            ids = scores.max(1).values.topk(self.nms_pre).indices
            scores, reg, points = scores[ids], reg[ids], points[ids]
        boxes = self.decode(points, reg)
        return multiclass_nms_aligned_3d(boxes, scores, self.score_threshold, self.iou_threshold)
