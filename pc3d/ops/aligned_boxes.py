"""Axis-aligned 3D boxes in plain PyTorch: pairwise IoU, greedy NMS and class-wise NMS.

Boxes are ``(cx, cy, cz, dx, dy, dz)``: centre and full sizes in metres, faces parallel to the axes (indoor
scenes after ScanNet's axis alignment). Sizes must be >= 0; a box of zero volume has IoU 0 with everything.

Greedy NMS compares each kept box with the lower-scored candidates after it (numpy, float64); for the few
hundred to a thousand candidates an indoor detector keeps per class this costs milliseconds on a CPU, so there
is no compiled version.
"""
from typing import Tuple

import numpy as np
import torch

__all__ = ["aligned_box_iou_3d", "nms_aligned_3d", "multiclass_nms_aligned_3d", "aligned_boxes_to_corners"]


def _check_boxes(name: str, boxes) -> None:
    if not isinstance(boxes, torch.Tensor) or not boxes.is_floating_point():
        raise ValueError(f"{name} must be a float tensor (N, 6) [cx, cy, cz, dx, dy, dz], got "
                         f"{type(boxes).__name__} {getattr(boxes, 'dtype', '')}")
    if boxes.dim() != 2 or boxes.shape[1] < 6:
        raise ValueError(f"{name} must have shape (N, 6) [cx, cy, cz, dx, dy, dz], got {tuple(boxes.shape)}")


def aligned_boxes_to_corners(boxes: torch.Tensor) -> torch.Tensor:
    """(N, 6) [cx, cy, cz, dx, dy, dz] -> (N, 6) [x1, y1, z1, x2, y2, z2] (min corner, max corner)."""
    return torch.cat([boxes[:, :3] - boxes[:, 3:6] / 2, boxes[:, :3] + boxes[:, 3:6] / 2], 1)


def aligned_box_iou_3d(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of axis-aligned 3D boxes.

    Args:
        a: (N, 6) [cx, cy, cz, dx, dy, dz]; b: (M, 6). Extra columns (e.g. a zero heading) are ignored.
    Returns:
        (N, M) IoU in a's dtype; 0 where the union is 0.
    """
    _check_boxes("a", a)
    _check_boxes("b", b)
    ca, cb = aligned_boxes_to_corners(a[:, :6]), aligned_boxes_to_corners(b[:, :6].to(a.dtype))
    lo = torch.maximum(ca[:, None, :3], cb[None, :, :3])
    hi = torch.minimum(ca[:, None, 3:], cb[None, :, 3:])
    inter = (hi - lo).clamp(min=0).prod(2)
    union = a[:, 3:6].prod(1)[:, None] + b[:, 3:6].to(a.dtype).prod(1)[None] - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(a.dtype).tiny), torch.zeros_like(inter))


def nms_aligned_3d(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS of axis-aligned 3D boxes: the best-scoring box is kept and every box with IoU > threshold
    with it is dropped, then the next remaining box, and so on.

    Args:
        boxes: (N, 6) [cx, cy, cz, dx, dy, dz]; scores: (N,); iou_threshold: a box whose IoU with a kept
            box is strictly greater is suppressed.
    Returns:
        keep: (K,) int64 indices into ``boxes``, by descending score (ties: lower index first).
    """
    _check_boxes("boxes", boxes)
    if scores.dim() != 1 or len(scores) != len(boxes):
        raise ValueError(f"scores must be (N,) with N = {len(boxes)} boxes, got {tuple(scores.shape)}")
    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    b = boxes[order][:, :6].detach().cpu().numpy().astype(np.float64)
    lo, hi = b[:, :3] - b[:, 3:6] / 2, b[:, :3] + b[:, 3:6] / 2
    vol = np.prod(b[:, 3:6], axis=1)
    thr = float(iou_threshold)
    suppressed = np.zeros(len(b), dtype=bool)
    keep = []
    # Sequential by nature (whether box i survives depends on the earlier keeps); each kept box is compared
    # with the boxes after it only, so the cost is (kept boxes) x N rather than the full N x N matrix.
    for i in range(len(b)):
        if suppressed[i]:
            continue
        keep.append(i)
        inter = np.prod(np.clip(np.minimum(hi[i], hi[i + 1:]) - np.maximum(lo[i], lo[i + 1:]), 0.0, None), axis=1)
        union = vol[i] + vol[i + 1:] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        suppressed[i + 1:] |= iou > thr
    return order[torch.as_tensor(keep, dtype=torch.long, device=boxes.device)]


def multiclass_nms_aligned_3d(boxes: torch.Tensor, scores: torch.Tensor, score_threshold: float,
                              iou_threshold: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class-wise NMS: for each class, the boxes whose score for that class is > ``score_threshold`` go
    through ``nms_aligned_3d`` on their own, so one box may survive under several classes.

    Args:
        boxes: (N, 6); scores: (N, C) per-class scores.
    Returns:
        boxes (K, 6), scores (K,), labels (K,) int64, grouped by class (class 0 first), each class by
        descending score.
    """
    _check_boxes("boxes", boxes)
    if scores.dim() != 2 or len(scores) != len(boxes):
        raise ValueError(f"scores must be (N, C) with N = {len(boxes)} boxes, got {tuple(scores.shape)}")
    out_b, out_s, out_l = [], [], []
    for c in range(scores.shape[1]):
        ids = torch.nonzero(scores[:, c] > score_threshold).reshape(-1)
        if len(ids) == 0:
            continue
        keep = ids[nms_aligned_3d(boxes[ids], scores[ids, c], iou_threshold)]
        out_b.append(boxes[keep])
        out_s.append(scores[keep, c])
        out_l.append(torch.full((len(keep),), c, dtype=torch.long, device=boxes.device))
    if not out_b:
        return (boxes.new_zeros((0, boxes.shape[1])), scores.new_zeros(0),
                torch.zeros(0, dtype=torch.long, device=boxes.device))
    return torch.cat(out_b), torch.cat(out_s), torch.cat(out_l)
