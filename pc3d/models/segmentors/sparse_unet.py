"""Indoor semantic segmentation: voxelize -> spconv sparse UNet -> per-voxel class logits -> points.

Data flow (one batch):
    points (sum N, 1 + 6) float32 [b, x, y, z, r, g, b] (colour 0..1, from ``IndoorNormalizeColor``)
    -> voxels of ``voxel_size`` per sample (grid origin = the sample's min corner), voxel features
       = mean over its points of [r, g, b, z - z_min] (V, 4)
    -> sparse UNet (submanifold convs, strided sparse convs down, inverse convs up with skip concat)
    -> Linear head: voxel logits (V, num_classes) -> every point takes its voxel's logits
    -> loss: cross entropy over points (``ignore_index`` points excluded); predict: argmax per point.
"""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import nn

from pc3d.registry import MODELS

from ..backbones3d._spconv_compat import import_spconv


def voxelize_points(points: torch.Tensor, voxel_size: float, batch_size: int):
    """Per-sample voxel grid of batched points.

    Args:
        points: (N, 1 + C) float32, column 0 = sample index, then x, y, z, r, g, b.
    Returns:
        coords (V, 4) int32 (b, z, y, x) unique voxels, point2voxel (N,) int64, feats (V, 4) float32 mean
        [r, g, b, z - z_min], spatial_shape [D, H, W].
    """
    b = points[:, 0].long()
    xyz = points[:, 1:4]
    lo = torch.full((batch_size, 3), float("inf"), dtype=xyz.dtype, device=xyz.device)
    lo = lo.scatter_reduce(0, b[:, None].expand(-1, 3), xyz, reduce="amin", include_self=True)
    grid = torch.floor((xyz - lo[b]) / voxel_size).long()  # (N, 3) x, y, z >= 0
    shape = (grid.max(0).values + 1) if len(grid) else torch.ones(3, dtype=torch.long)
    w, h, d = (int(s) for s in shape)
    key = ((b * d + grid[:, 2]) * h + grid[:, 1]) * w + grid[:, 0]
    uniq, point2voxel = torch.unique(key, return_inverse=True)
    coords = torch.stack([uniq // (d * h * w), uniq // (h * w) % d, uniq // w % h, uniq % w], 1).int()
    per_point = torch.cat([points[:, 4:7], (xyz[:, 2] - lo[b, 2])[:, None]], 1)
    feats = torch.zeros(len(uniq), per_point.shape[1], dtype=per_point.dtype, device=per_point.device)
    feats.index_add_(0, point2voxel, per_point)
    count = torch.bincount(point2voxel, minlength=len(uniq)).clamp(min=1)
    return coords, point2voxel, feats / count[:, None].to(feats.dtype), [d, h, w]


@MODELS.register_module()
class SparseUNetSegmentor(BaseModel):
    """Sparse-conv UNet point segmenter.

    Args:
        num_classes: output classes (20 for ScanNet). voxel_size: metres.
        channels: widths per level, e.g. (16, 32, 64, 96): level i > 0 is reached by a stride-2 conv.
        blocks: SubMConv3d layers per level (encoder; the decoder uses one after each skip concat).
        ignore_index: GT label left out of the loss. class_weight: optional (num_classes,) CE weights.
        in_channels: voxel feature width (4: r, g, b, height).
    forward(inputs=dict(points (sum N, 7), batch_size), data_samples=[dict(pts_semantic_mask (N_i,), ...)])
        mode 'loss' -> dict(loss_seg); 'predict' -> data samples with pred_semantic (N_i,) int64 and
        gt_semantic (N_i,) int64; 'tensor' -> point logits (sum N, num_classes).
    """

    def __init__(self, num_classes: int = 20, voxel_size: float = 0.05, channels: Sequence[int] = (16, 32, 64, 96),
                 blocks: Sequence[int] = (1, 1, 2, 2), ignore_index: int = -1,
                 class_weight: Optional[Sequence[float]] = None, in_channels: int = 4,
                 data_preprocessor: Optional[Dict] = None, init_cfg=None):
        # Built from pc3d's registry here: BaseModel itself would look in mmengine's root registry.
        preprocessor = MODELS.build(data_preprocessor or dict(type="PointsDataPreprocessor"))
        super().__init__(data_preprocessor=preprocessor, init_cfg=init_cfg)
        if len(channels) != len(blocks) or len(channels) < 2:
            raise ValueError(f"channels and blocks need the same length >= 2, got {channels}, {blocks}")
        if voxel_size <= 0:
            raise ValueError(f"voxel_size must be > 0, got {voxel_size}")
        spconv = import_spconv()
        self._spconv = spconv
        self.num_classes, self.voxel_size, self.ignore_index = num_classes, float(voxel_size), ignore_index

        def subm(cin, cout, key):
            return [spconv.SubMConv3d(cin, cout, 3, padding=1, bias=False, indice_key=key),
                    nn.BatchNorm1d(cout, eps=1e-3, momentum=0.01), nn.ReLU(inplace=True)]

        self.enc, self.dec = nn.ModuleList(), nn.ModuleList()
        c_prev = in_channels
        for i, (c, n) in enumerate(zip(channels, blocks)):
            layers = []
            if i > 0:
                layers += [spconv.SparseConv3d(c_prev, c, 2, stride=2, bias=False, indice_key=f"down{i}"),
                           nn.BatchNorm1d(c, eps=1e-3, momentum=0.01), nn.ReLU(inplace=True)]
                c_prev = c
            for _ in range(n):
                layers += subm(c_prev, c, f"subm{i}")
                c_prev = c
            self.enc.append(spconv.SparseSequential(*layers))
        self.up = nn.ModuleList()
        for i in range(len(channels) - 1, 0, -1):
            # the inverse conv restores level i-1's exact voxel set (same rows, same order) for the skip
            self.up.append(spconv.SparseSequential(
                spconv.SparseInverseConv3d(channels[i], channels[i - 1], 2, bias=False, indice_key=f"down{i}"),
                nn.BatchNorm1d(channels[i - 1], eps=1e-3, momentum=0.01), nn.ReLU(inplace=True)))
            self.dec.append(spconv.SparseSequential(*subm(2 * channels[i - 1], channels[i - 1], f"subm{i - 1}")))
        self.head = nn.Linear(channels[0], num_classes)
        self.register_buffer("class_weight", None if class_weight is None
                             else torch.as_tensor(class_weight, dtype=torch.float32), persistent=False)

    def point_logits(self, points: torch.Tensor, batch_size: int) -> torch.Tensor:
        """(sum N, 1 + 6) points -> (sum N, num_classes) logits (each point gets its voxel's)."""
        if points.dim() != 2 or points.shape[1] < 7:
            raise ValueError(f"points must be (N, 7) [b, x, y, z, r, g, b], got {tuple(points.shape)}")
        coords, p2v, feats, shape = voxelize_points(points, self.voxel_size, batch_size)
        x = self._spconv.SparseConvTensor(feats, coords, shape, batch_size)
        skips = []
        for stage in self.enc:
            x = stage(x)
            skips.append(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips[:-1])):
            x = up(x)
            x = dec(x.replace_feature(torch.cat([x.features, skip.features], 1)))
        return self.head(x.features)[p2v]

    def _labels(self, data_samples, device):
        try:
            return torch.cat([torch.as_tensor(ds["pts_semantic_mask"]).long() for ds in data_samples]).to(device)
        except KeyError:
            raise ValueError("SparseUNetSegmentor: data samples need 'pts_semantic_mask' for loss/predict") from None

    def forward(self, inputs: Dict, data_samples: Optional[List[Dict]] = None, mode: str = "tensor"):
        points, batch_size = inputs["points"], int(inputs["batch_size"])
        logits = self.point_logits(points, batch_size)
        if mode == "tensor":
            return logits
        if mode == "loss":
            labels = self._labels(data_samples, logits.device)
            if len(labels) != len(logits):
                raise ValueError(f"{len(labels)} point labels for {len(logits)} points")
            if (labels != self.ignore_index).any():
                loss = F.cross_entropy(logits, labels, weight=self.class_weight, ignore_index=self.ignore_index)
            else:  # nothing labelled in this batch: a zero loss that still reaches every parameter
                loss = logits.sum() * 0.0
            return {"loss_seg": loss}
        if mode == "predict":
            pred = logits.argmax(1)
            out, b = [], points[:, 0].long()
            for i, ds in enumerate(data_samples):
                sample = dict(ds)
                sample["pred_semantic"] = pred[b == i].cpu()
                if "pts_semantic_mask" in ds:
                    sample["gt_semantic"] = torch.as_tensor(ds["pts_semantic_mask"]).long().cpu()
                out.append(sample)
            return out
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")
