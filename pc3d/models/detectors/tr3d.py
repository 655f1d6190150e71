"""TR3D: anchor-free sparse-conv indoor 3D detector with axis-aligned boxes (Rukhovich et al., 2023).

Data flow (one batch of B scenes):
    points (sum N, 1 + 6) float32 [b, x, y, z, r, g, b] (colour 0..1, from ``IndoorNormalizeColor``)
    -> voxels of ``voxel_size`` per scene (grid origin = the scene's min corner), features = mean over the
       voxel's points of [r, g, b] (+ height above the scene's lowest point with ``use_height``) (V, 3|4)
    -> backbone (``SparseResNetEncoder``: a list of sparse levels; or any pc3d 3D backbone returning one
       ``SparseVoxels`` level, with its stride given by ``backbone_stride``)
    -> neck (``TR3DNeck``): L' output levels (V_l, C)
    -> head (``TR3DHead``): per voxel class logits (V_l, num_classes) and box regressions (V_l, 6) about the
       voxel's centre in metres: origin + (index + 0.5) * voxel_size * stride
    -> loss (centre-sampling assignment, focal + DIoU) or boxes (class-wise axis-aligned NMS).
Boxes are ``(cx, cy, cz, dx, dy, dz)`` in the scene's (axis-aligned) frame, as ``ScanNetDataset`` gives them.
"""
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.model import BaseModel

from pc3d.registry import MODELS

from ..backbones3d import sparse_resnet  # noqa: F401  (registers SparseResNetEncoder)
from ..backbones3d._spconv_compat import import_spconv
from ..heads import tr3d as tr3d_head  # noqa: F401  (registers TR3DNeck, TR3DHead)
from ..structures import SparseVoxels


def voxelize_scenes(points: torch.Tensor, voxel_size: float, batch_size: int, use_height: bool = False):
    """Per-scene voxel grid with averaged colour features.

    Args:
        points: (N, 1 + 6+) float32 [b, x, y, z, r, g, b, ...], rows grouped by scene or not.
    Returns:
        SparseVoxels (feats (V, 3|4) mean [r, g, b(, z - z_min)], coords (V, 4) int32 (b, z, y, x), spatial
        shape (D, H, W) over the batch) and origins (B, 3) float: each scene's min corner (x, y, z).
    """
    if points.dim() != 2 or points.shape[1] < 7:
        raise ValueError(f"points must be (N, 7) [b, x, y, z, r, g, b], got {tuple(points.shape)}")
    b = points[:, 0].long()
    if len(b) and (b.min() < 0 or b.max() >= batch_size):
        raise ValueError(f"points column 0 (scene index) must be in [0, {batch_size}), got "
                         f"{int(b.min())}..{int(b.max())}")
    xyz = points[:, 1:4]
    lo = torch.full((batch_size, 3), float("inf"), dtype=xyz.dtype, device=xyz.device)
    lo = lo.scatter_reduce(0, b[:, None].expand(-1, 3), xyz, reduce="amin", include_self=True)
    lo = torch.where(torch.isfinite(lo), lo, torch.zeros_like(lo))  # a scene without points
    grid = torch.floor((xyz - lo[b]) / voxel_size).long()
    w, h, d = (int(s) for s in ((grid.max(0).values + 1) if len(grid) else torch.ones(3, dtype=torch.long)))
    key = ((b * d + grid[:, 2]) * h + grid[:, 1]) * w + grid[:, 0]
    uniq, p2v = torch.unique(key, return_inverse=True)
    coords = torch.stack([uniq // (d * h * w), uniq // (h * w) % d, uniq // w % h, uniq % w], 1).int()
    per_point = points[:, 4:7]
    if use_height:
        per_point = torch.cat([per_point, (xyz[:, 2] - lo[b, 2])[:, None]], 1)
    feats = per_point.new_zeros(len(uniq), per_point.shape[1]).index_add_(0, p2v, per_point)
    count = torch.bincount(p2v, minlength=len(uniq)).clamp(min=1)
    return SparseVoxels(feats / count[:, None].to(feats.dtype), coords, (d, h, w), batch_size), lo


@MODELS.register_module()
class TR3D(BaseModel):
    """TR3D indoor detector; defaults are the paper's ScanNet model (1 cm voxels, ResNet-34-style encoder with
    stride-2 stem and max pool, widths 64/128/128/128, generative neck at 128, outputs at the encoder's
    levels 1 and 2, i.e. 16 cm and 32 cm).

    Args:
        num_classes: 18 for ScanNet. voxel_size: metres. use_height: add the height above the scene's lowest
            point to the voxel features (TR3D: colour only).
        backbone, neck, head: config dicts (``SparseResNetEncoder``, ``TR3DNeck``, ``TR3DHead``); the head's
            ``num_classes`` and the neck's ``in_channels`` / head's ``in_channels`` are filled in.
        backbone_stride: (z, y, x) stride of a backbone that returns a single ``SparseVoxels`` level
            (any pc3d 3D backbone); ignored for a multi-level encoder (it carries ``strides``).

    forward(inputs=dict(points (sum N, 7) float32, batch_size), data_samples=[dict per scene], mode):
      - 'loss': dict(loss_cls, loss_bbox); data samples need ``gt_boxes (M, 6|7)`` and ``gt_labels (M,)``.
      - 'predict': per scene a dict with ``pred_boxes (K, 6)``, ``pred_scores (K,)``, ``pred_labels (K,)``
        int64 (CPU), plus every field of its data sample (GT, frame_id) for ``ScanNetDetMetric``.
      - 'tensor': dict(cls list of (V_l, num_classes), reg list of (V_l, 6), points list of (V_l, 3),
        batch_idx list of (V_l,)).
    """

    def __init__(self, num_classes: int = 18, voxel_size: float = 0.01, use_height: bool = False,
                 backbone: Optional[Dict] = None, neck: Optional[Dict] = None, head: Optional[Dict] = None,
                 backbone_stride: Sequence[int] = (1, 1, 1), data_preprocessor: Optional[Dict] = None,
                 init_cfg=None):
        preprocessor = MODELS.build(data_preprocessor or dict(type="PointsDataPreprocessor"))
        super().__init__(data_preprocessor=preprocessor, init_cfg=init_cfg)
        if voxel_size <= 0:
            raise ValueError(f"voxel_size must be > 0, got {voxel_size}")
        self.num_classes, self.voxel_size, self.use_height = num_classes, float(voxel_size), bool(use_height)
        in_ch = 4 if use_height else 3
        backbone = dict(dict(type="SparseResNetEncoder"), **(backbone or {}))
        backbone.setdefault("in_channels", in_ch)
        self.backbone = MODELS.build(backbone)
        if hasattr(self.backbone, "strides"):
            self.level_strides = [tuple(s) for s in self.backbone.strides]
            enc_channels = list(self.backbone.out_channels)
        else:
            self.level_strides = [tuple(int(s) for s in backbone_stride)]
            enc_channels = [int(self.backbone.out_channels)]
        neck = dict(dict(type="TR3DNeck"), **(neck or {}))
        neck.setdefault("in_channels", enc_channels)
        if len(enc_channels) == 1:
            neck["first_level"] = 0
        self.neck = MODELS.build(neck)
        head = dict(dict(type="TR3DHead"), **(head or {}))
        head.setdefault("in_channels", self.neck.out_channels)
        head["num_classes"] = num_classes
        self.head = MODELS.build(head)

    def extract_levels(self, points: torch.Tensor, batch_size: int) -> Dict[str, List[torch.Tensor]]:
        """(sum N, 7) points -> per output level: feats (V_l, C), points (V_l, 3) voxel centres, batch_idx."""
        voxels, origin = voxelize_scenes(points, self.voxel_size, batch_size, self.use_height)
        levels = self.backbone(voxels)
        if isinstance(levels, SparseVoxels):  # a single-level pc3d backbone
            spconv = import_spconv()
            levels = [spconv.SparseConvTensor(levels.feats, levels.coords.int(), list(levels.spatial_shape),
                                              levels.batch_size)]
        outs = self.neck(levels)
        first = self.neck.first_level
        res = {"feats": [], "points": [], "batch_idx": []}
        for i, x in enumerate(outs):
            sz, sy, sx = self.level_strides[first + i]
            idx = x.indices.long()
            stride = torch.tensor([sx, sy, sz], dtype=points.dtype, device=points.device)
            centre = origin[idx[:, 0]] + (idx[:, [3, 2, 1]].to(points.dtype) + 0.5) * stride * self.voxel_size
            res["feats"].append(x.features)
            res["points"].append(centre)
            res["batch_idx"].append(idx[:, 0])
        return res

    def forward(self, inputs: Dict, data_samples: Optional[List[Dict]] = None, mode: str = "tensor"):
        points, batch_size = inputs["points"], int(inputs["batch_size"])
        lv = self.extract_levels(points, batch_size)
        cls, reg = self.head(lv["feats"])
        if mode == "tensor":
            return {"cls": cls, "reg": reg, "points": lv["points"], "batch_idx": lv["batch_idx"]}
        levels = torch.cat([torch.full((len(c),), i, dtype=torch.long, device=c.device) for i, c in enumerate(cls)])
        cls, reg = torch.cat(cls), torch.cat(reg)
        centres, batch_idx = torch.cat(lv["points"]), torch.cat(lv["batch_idx"])
        if mode == "loss":
            if data_samples is None or len(data_samples) != batch_size:
                raise ValueError(f"mode 'loss' needs one data sample per scene ({batch_size})")
            try:
                gt_boxes = [torch.as_tensor(ds["gt_boxes"]).reshape(-1, torch.as_tensor(ds["gt_boxes"]).shape[-1])
                            for ds in data_samples]
                gt_labels = [torch.as_tensor(ds["gt_labels"]).reshape(-1) for ds in data_samples]
            except KeyError as e:
                raise ValueError(f"TR3D: data samples need 'gt_boxes' and 'gt_labels' for the loss, missing {e}") \
                    from None
            for i, (bx, lb) in enumerate(zip(gt_boxes, gt_labels)):
                if bx.shape[-1] < 6 or len(bx) != len(lb):
                    raise ValueError(f"sample {i}: gt_boxes must be (M, 6|7) with M = len(gt_labels) = {len(lb)}, "
                                     f"got {tuple(bx.shape)}")
            return self.head.loss(cls, reg, centres, levels, batch_idx, gt_boxes, gt_labels)
        if mode == "predict":
            out = []
            for i in range(batch_size):
                sel = batch_idx == i
                boxes, scores, labels = self.head.predict(cls[sel], reg[sel], centres[sel])
                sample = dict(data_samples[i]) if data_samples is not None else {}
                sample.update(pred_boxes=boxes.detach().float().cpu(), pred_scores=scores.detach().float().cpu(),
                              pred_labels=labels.cpu())
                out.append(sample)
            return out
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")
