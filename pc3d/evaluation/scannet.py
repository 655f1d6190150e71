"""ScanNet 3D detection metric: per-class VOC AP and recall at axis-aligned 3D IoU 0.25 and 0.5.

The rules are those of the common ScanNet evaluation (VoteNet's ``eval_det``, mmdetection3d's
``indoor_eval``):

- per class, the predictions of all scenes are ranked by descending score (ties: earlier scene,
  then earlier box, first);
- each prediction looks at the GT box of its class *in its scene* with the highest IoU (first one on
  equal IoU), whether or not that box is already taken; it is a TP when that IoU is > the threshold
  and the box is not yet taken (it then takes it), else an FP (no fall-back to the second-best box);
- AP is the VOC area under the precision envelope (precision made monotone from the right, summed
  over every recall step, not the 11-point variant); recall is the final recall;
- mAP / mAR average over the classes that have at least one GT box in the evaluated scenes (a class
  without GT has an undefined AP; it is reported as NaN and left out of the mean).

Boxes are ``(cx, cy, cz, dx, dy, dz)`` (metres, axis-aligned after ScanNet's axis alignment); a 7th
heading column, if present, is ignored: ScanNet boxes are axis-aligned by construction.
The semantic-segmentation mIoU lives in ``scannet_seg``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from pc3d.registry import METRICS

from pc3d.classes import SCANNET_DET_CLASSES, SCANNET_DET_NYU40_IDS  # noqa: F401  (re-exported)


def _as_boxes(boxes, what: str) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    if b.size == 0:
        return np.zeros((0, 6))
    if b.ndim != 2 or b.shape[1] not in (6, 7):
        raise ValueError(f"{what} must be (M, 6) [cx, cy, cz, dx, dy, dz] or (M, 7), got shape {b.shape}")
    if not np.all(np.isfinite(b[:, :6])):
        raise ValueError(f"{what} has non-finite values")
    if (b[:, 3:6] <= 0).any():
        raise ValueError(f"{what} sizes (dx, dy, dz) must be > 0, got {b[(b[:, 3:6] <= 0).any(1)][0, 3:6].tolist()}")
    return b[:, :6]


def axis_aligned_iou_3d(a, b) -> np.ndarray:
    """IoU of axis-aligned 3D boxes.

    Args:
        a: (N, 6|7) [cx, cy, cz, dx, dy, dz(, ignored)]; b: (M, 6|7).
    Returns:
        (N, M) float64.
    """
    a, b = _as_boxes(a, "a"), _as_boxes(b, "b")
    lo = np.maximum(a[:, None, :3] - a[:, None, 3:] / 2, b[None, :, :3] - b[None, :, 3:] / 2)
    hi = np.minimum(a[:, None, :3] + a[:, None, 3:] / 2, b[None, :, :3] + b[None, :, 3:] / 2)
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=2)
    union = np.prod(a[:, 3:], axis=1)[:, None] + np.prod(b[:, 3:], axis=1)[None] - inter
    return inter / union


def voc_average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the monotone precision envelope (VOC 2010+ 'area' AP).

    Args:
        recall: (K,) non-decreasing; precision: (K,) at the same ranks.
    """
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # best precision at this recall or beyond
    step = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[step + 1] - mrec[step]) * mpre[step + 1]))


def _check_scene(i, gt_boxes, gt_labels, pred_boxes, pred_labels, pred_scores, num_classes):
    gb, pb = _as_boxes(gt_boxes, f"gt_boxes[{i}]"), _as_boxes(pred_boxes, f"pred_boxes[{i}]")
    gl = np.asarray(gt_labels).reshape(-1).astype(np.int64)
    pl = np.asarray(pred_labels).reshape(-1).astype(np.int64)
    ps = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
    if len(gl) != len(gb):
        raise ValueError(f"scene {i}: {len(gb)} gt_boxes but {len(gl)} gt_labels")
    if not (len(pl) == len(ps) == len(pb)):
        raise ValueError(f"scene {i}: pred_boxes, pred_labels, pred_scores lengths {len(pb)}, {len(pl)}, {len(ps)}")
    for name, lab in (("gt_labels", gl), ("pred_labels", pl)):
        bad = (lab < 0) | (lab >= num_classes)
        if bad.any():
            raise ValueError(f"scene {i}: {name} must be in [0, {num_classes}), got {lab[bad][0]}")
    if not np.all(np.isfinite(ps)):
        raise ValueError(f"scene {i}: pred_scores has non-finite values")
    return gb, gl, pb, pl, ps


def scannet_detection_metrics(gt_boxes: Sequence, gt_labels: Sequence, pred_boxes: Sequence, pred_labels: Sequence,
                              pred_scores: Sequence, iou_thresholds: Sequence[float] = (0.25, 0.5),
                              class_names: Sequence[str] = SCANNET_DET_CLASSES) -> dict:
    """ScanNet detection AP / recall per class and their means, over a list of scenes.

    Args (each a list with one entry per scene):
        gt_boxes: (M, 6|7) float; gt_labels: (M,) int index into ``class_names``;
        pred_boxes: (K, 6|7) float; pred_labels: (K,) int; pred_scores: (K,) float.
        iou_thresholds: IoU a TP must exceed.
    Returns:
        dict: ``ap`` {thr: {class: AP or NaN}}, ``recall`` {thr: {class: recall or NaN}},
        ``mAP`` {thr: mean}, ``mAR`` {thr: mean}, ``num_gt`` {class: count}, ``num_pred`` {class: count}.
    """
    n_scenes = len(gt_boxes)
    if not (len(gt_labels) == len(pred_boxes) == len(pred_labels) == len(pred_scores) == n_scenes):
        raise ValueError("gt_boxes, gt_labels, pred_boxes, pred_labels, pred_scores need one entry per scene; got "
                         f"{[len(x) for x in (gt_boxes, gt_labels, pred_boxes, pred_labels, pred_scores)]}")
    n_cls = len(class_names)
    scenes = [_check_scene(i, *args, n_cls) for i, args in
              enumerate(zip(gt_boxes, gt_labels, pred_boxes, pred_labels, pred_scores))]
    ths = tuple(float(t) for t in iou_thresholds)
    # Per prediction: its scene, class, score, best same-class GT (global row) and that IoU.
    rows = {k: [] for k in ("cls", "score", "best", "iou")}
    gt_offset, num_gt = 0, np.zeros(n_cls, dtype=np.int64)
    for gb, gl, pb, pl, ps in scenes:
        iou = axis_aligned_iou_3d(pb, gb)
        iou = np.where(pl[:, None] == gl[None, :], iou, -np.inf)  # only GT of the same class count
        best = np.argmax(iou, axis=1) if len(gb) else np.zeros(len(pb), dtype=np.int64)
        best_iou = iou[np.arange(len(pb)), best] if len(gb) else np.full(len(pb), -np.inf)
        rows["cls"].append(pl)
        rows["score"].append(ps)
        rows["best"].append(best + gt_offset)
        rows["iou"].append(best_iou)
        gt_offset += len(gb)
        num_gt += np.bincount(gl, minlength=n_cls)
    cls, score, best, best_iou = (np.concatenate(rows[k]) if rows[k] else np.zeros(0) for k in rows)
    cls, best = cls.astype(np.int64), best.astype(np.int64)
    ap = {t: {} for t in ths}
    rec = {t: {} for t in ths}
    for c, name in enumerate(class_names):
        sel = np.flatnonzero(cls == c)
        sel = sel[np.argsort(-score[sel], kind="stable")]
        for t in ths:
            if num_gt[c] == 0:
                ap[t][name] = rec[t][name] = float("nan")
                continue
            cand = np.flatnonzero(best_iou[sel] > t)
            # The first (highest-ranked) candidate on a GT box takes it; later ones on the same box are FPs.
            _, first = np.unique(best[sel[cand]], return_index=True)
            tp = np.zeros(len(sel))
            tp[cand[first]] = 1.0
            tp_c = np.cumsum(tp)
            recall = tp_c / num_gt[c]
            precision = tp_c / np.maximum(np.arange(1, len(sel) + 1), np.finfo(np.float64).eps)
            ap[t][name] = voc_average_precision(recall, precision) if len(sel) else 0.0
            rec[t][name] = float(recall[-1]) if len(sel) else 0.0
    return {
        "ap": ap, "recall": rec,
        "mAP": {t: float(np.nanmean(list(ap[t].values()))) if num_gt.any() else float("nan") for t in ths},
        "mAR": {t: float(np.nanmean(list(rec[t].values()))) if num_gt.any() else float("nan") for t in ths},
        "num_gt": {n: int(num_gt[c]) for c, n in enumerate(class_names)},
        "num_pred": {n: int(np.sum(cls == c)) for c, n in enumerate(class_names)},
    }


def format_scannet_det_table(result: dict) -> str:
    """Per-class AP / recall table (one column pair per IoU threshold) and the means, as text."""
    ths = list(result["ap"])
    names = list(result["num_gt"])
    head = ["class", "#gt"] + [x for t in ths for x in (f"AP@{t:g}", f"AR@{t:g}")]
    body = [[n, str(result["num_gt"][n])] + [f"{result[k][t][n]:.4f}" for t in ths for k in ("ap", "recall")]
            for n in names]
    body.append(["mean", str(sum(result["num_gt"].values()))]
                + [f"{result[k][t]:.4f}" for t in ths for k in ("mAP", "mAR")])
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in [head] + body)


def _field(sample, key):
    val = sample.get(key) if isinstance(sample, dict) else getattr(sample, key, None)
    if val is None:
        raise ValueError(f"data sample lacks {key!r}")
    return val.detach().cpu().numpy() if hasattr(val, "detach") else np.asarray(val)


@METRICS.register_module()
class ScanNetDetMetric(BaseMetric):
    """mmengine metric: ScanNet detection mAP / mAR at each IoU threshold, per-class AP.

    Each data sample (dict or data element) carries ``pred_boxes`` (K, 6|7), ``pred_scores`` (K,),
    ``pred_labels`` (K,) int, ``gt_boxes`` (M, 6|7), ``gt_labels`` (M,) int (indices into
    ``class_names``), boxes as ``(cx, cy, cz, dx, dy, dz)`` in the axis-aligned scene frame.
    """

    default_prefix = "scannet"

    def __init__(self, iou_thresholds: Sequence[float] = (0.25, 0.5),
                 class_names: Sequence[str] = SCANNET_DET_CLASSES, collect_device: str = "cpu",
                 prefix: str | None = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.iou_thresholds = tuple(iou_thresholds)
        self.class_names = tuple(class_names)

    def process(self, data_batch, data_samples: Sequence) -> None:
        for ds in data_samples:
            self.results.append({k: _field(ds, k) for k in
                                 ("gt_boxes", "gt_labels", "pred_boxes", "pred_labels", "pred_scores")})

    def compute_metrics(self, results: list) -> dict:
        res = scannet_detection_metrics(*([r[k] for r in results] for k in
                                          ("gt_boxes", "gt_labels", "pred_boxes", "pred_labels", "pred_scores")),
                                        iou_thresholds=self.iou_thresholds, class_names=self.class_names)
        MMLogger.get_current_instance().info("ScanNet detection\n" + format_scannet_det_table(res))
        out = {}
        for t in self.iou_thresholds:
            out[f"mAP_{t:.2f}"] = res["mAP"][float(t)]
            out[f"mAR_{t:.2f}"] = res["mAR"][float(t)]
            out.update({f"{n}_AP_{t:.2f}": v for n, v in res["ap"][float(t)].items()})
        return out
