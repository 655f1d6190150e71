"""ScanNet semantic segmentation metric: per-class IoU and mIoU from a confusion matrix.

``IoU_c = TP_c / (TP_c + FP_c + FN_c)`` with the confusion matrix summed over all points of all
scenes (not averaged per scene); points whose GT label is ``ignore_index`` take no part. A class
that appears neither in the GT nor in the predictions has an undefined IoU (NaN) and is left out of
the mean, as in the ScanNet benchmark tools and mmdetection3d's ``seg_eval``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from pc3d.registry import METRICS

from pc3d.classes import SCANNET_SEG_CLASSES, SCANNET_SEG_NYU40_IDS  # noqa: F401  (re-exported)


def segmentation_confusion(pred, gt, num_classes: int = 20, ignore_index: int = -1) -> np.ndarray:
    """Confusion matrix of point labels.

    Args:
        pred: (N,) int predicted class in [0, num_classes). gt: (N,) int GT class in
            [0, num_classes) or ``ignore_index`` (those points are skipped).
    Returns:
        (num_classes, num_classes) int64, rows = GT class, columns = predicted class.
    """
    pred = np.asarray(pred).reshape(-1)
    gt = np.asarray(gt).reshape(-1)
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt must have the same number of points, got {pred.shape[0]} and {gt.shape[0]}")
    if pred.dtype.kind not in "iu" or gt.dtype.kind not in "iu":
        raise ValueError(f"pred and gt must be integer labels, got {pred.dtype} and {gt.dtype}")
    valid = gt != ignore_index
    bad_gt = valid & ((gt < 0) | (gt >= num_classes))
    if bad_gt.any():
        raise ValueError(f"gt labels must be in [0, {num_classes}) or ignore_index={ignore_index}, "
                         f"got {gt[bad_gt][0]}")
    p, g = pred[valid].astype(np.int64), gt[valid].astype(np.int64)
    bad = (p < 0) | (p >= num_classes)
    if bad.any():
        raise ValueError(f"pred labels must be in [0, {num_classes}), got {p[bad][0]}")
    return np.bincount(g * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def segmentation_metrics(confusion, class_names: Sequence[str] = SCANNET_SEG_CLASSES) -> dict:
    """IoU per class, mIoU, overall and mean class accuracy from a confusion matrix.

    Args:
        confusion: (C, C) int, rows = GT, columns = prediction.
    Returns:
        dict: ``iou`` {class: IoU or NaN}, ``mIoU``, ``acc`` (correct / all points), ``mAcc`` (mean
        over classes present in the GT of correct / GT points), ``num_points`` {class: GT points}.
    """
    cm = np.asarray(confusion, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(class_names):
        raise ValueError(f"confusion must be ({len(class_names)}, {len(class_names)}), got {cm.shape}")
    tp = np.diag(cm)
    gt_count, pred_count = cm.sum(axis=1), cm.sum(axis=0)
    union = gt_count + pred_count - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        cls_acc = np.where(gt_count > 0, tp / gt_count, np.nan)
    total = cm.sum()
    return {
        "iou": {n: float(v) for n, v in zip(class_names, iou)},
        "mIoU": float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
        "acc": float(tp.sum() / total) if total > 0 else float("nan"),
        "mAcc": float(np.nanmean(cls_acc)) if np.isfinite(cls_acc).any() else float("nan"),
        "num_points": {n: int(v) for n, v in zip(class_names, gt_count)},
    }


def format_scannet_seg_table(result: dict) -> str:
    """Per-class IoU table and the summary line, as text."""
    w = max(len(n) for n in result["iou"])
    lines = [f"{'class'.rjust(w)}  {'#points':>10}  {'IoU':>7}"]
    lines += [f"{n.rjust(w)}  {result['num_points'][n]:>10d}  {v:7.4f}" for n, v in result["iou"].items()]
    lines.append(f"mIoU: {result['mIoU']:.4f}  acc: {result['acc']:.4f}  mAcc: {result['mAcc']:.4f}")
    return "\n".join(lines)


@METRICS.register_module()
class ScanNetSegMetric(BaseMetric):
    """mmengine metric: ScanNet semantic segmentation mIoU.

    Each data sample (dict or data element) carries ``pred_semantic`` (N,) int and ``gt_semantic``
    (N,) int point labels (GT may hold ``ignore_index``). Only each sample's confusion matrix is kept.
    """

    default_prefix = "scannet"

    def __init__(self, class_names: Sequence[str] = SCANNET_SEG_CLASSES, ignore_index: int = -1,
                 collect_device: str = "cpu", prefix: str | None = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.class_names = tuple(class_names)
        self.ignore_index = ignore_index

    def process(self, data_batch, data_samples: Sequence) -> None:
        for ds in data_samples:
            fields = []
            for key in ("pred_semantic", "gt_semantic"):
                val = ds.get(key) if isinstance(ds, dict) else getattr(ds, key, None)
                if val is None:
                    raise ValueError(f"ScanNetSegMetric: data sample lacks {key!r}")
                fields.append(val.detach().cpu().numpy() if hasattr(val, "detach") else np.asarray(val))
            self.results.append(segmentation_confusion(*fields, len(self.class_names), self.ignore_index))

    def compute_metrics(self, results: list) -> dict:
        res = segmentation_metrics(np.sum(results, axis=0), self.class_names)
        MMLogger.get_current_instance().info("ScanNet segmentation\n" + format_scannet_seg_table(res))
        out = {"mIoU": res["mIoU"], "acc": res["acc"], "mAcc": res["mAcc"]}
        out.update({f"{n}_IoU": v for n, v in res["iou"].items()})
        return out
