"""nuScenes matching and per-class curves: greedy BEV centre-distance matching, PR curve, TP errors.

Official rules reproduced here (nuscenes-devkit ``eval/detection/algo.py``):

- Predictions of a class are processed by descending score over the whole split; equal scores are
  broken by the *later* box (in sample order, then box order) first.
- Each prediction takes the nearest (xy centre distance) GT box of its class in its sample that no
  earlier prediction took (first GT on equal distance); it is a TP when that distance is < the
  threshold, else an FP.
- precision and confidence are interpolated at 101 recalls 0, 0.01, ..., 1 (0 beyond the max recall).
- TP errors at ``dist_th_tp``: for every TP the translation (xy distance), scale (1 - aligned 3D IoU
  of the sizes), orientation (|yaw difference|, period pi for barriers), velocity (xy L2) and attribute
  (0/1; NaN when the GT has no attribute) errors; their running means (NaN-aware) are interpolated at
  the 101 operating points by confidence.
- AP = mean over recalls > min_recall of max(0, precision - min_precision) / (1 - min_precision).
- A TP error = mean of its curve over recalls > min_recall up to the max recall reached; 1 when the
  max recall is <= min_recall.

Unlike the devkit's per-prediction Python loop, the greedy matching here advances every sample at
once: round k matches the k-th prediction of every sample, for all distance thresholds together
(samples are independent, and within a sample the global order restricted to it is what matters).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .nuscenes_boxes import BoxArrays
from pc3d.geometry.nuscenes import angle_diff

N_POINTS = 101  # recall grid 0, 0.01, ..., 1


@dataclass
class ClassCurves:
    """Interpolated curves of one class at one distance threshold; every array is (101,) float64.

    ``errors`` maps each TP metric name to its curve (only filled at ``dist_th_tp``).
    """

    precision: np.ndarray
    confidence: np.ndarray
    errors: dict

    @classmethod
    def no_predictions(cls) -> "ClassCurves":
        ones = {k: np.ones(N_POINTS) for k in ("trans_err", "scale_err", "orient_err", "vel_err", "attr_err")}
        return cls(np.zeros(N_POINTS), np.zeros(N_POINTS), ones)


def processing_order(score: np.ndarray) -> np.ndarray:
    """Indices of predictions by descending score, ties broken by the larger index first.

    Args:
        score: (P,) float. Returns (P,) int64.
    """
    return np.lexsort((np.arange(len(score)), score))[::-1]


def greedy_match(pred_sample, pred_xy, gt_sample, gt_xy, thresholds) -> tuple[np.ndarray, np.ndarray]:
    """Greedy nearest-centre matching of predictions (already in processing order) to GT boxes.

    Args:
        pred_sample: (P,) int64 sample of each prediction; pred_xy: (P, 2) float64.
        gt_sample: (G,) int64; gt_xy: (G, 2) float64 (GT order inside a sample breaks distance ties).
        thresholds: (T,) float distance thresholds (a match needs distance < threshold).
    Returns:
        match: (T, P) int64 index of the matched GT row or -1; dist: (T, P) float64 distance to it.
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    n_t, n_p = len(thresholds), len(pred_sample)
    match = np.full((n_t, n_p), -1, dtype=np.int64)
    dist = np.full((n_t, n_p), np.inf)
    if n_p == 0 or len(gt_sample) == 0:
        return match, dist
    # Compact ids for the samples that have GT; predictions in other samples are FPs by construction.
    samples, gt_local = np.unique(gt_sample, return_inverse=True)
    gt_order = np.argsort(gt_local, kind="stable")
    counts = np.bincount(gt_local, minlength=len(samples))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(len(gt_order)) - np.repeat(starts, counts)
    g_max = counts.max()
    gt_pad = np.full((len(samples), g_max, 2), np.nan)
    gt_idx = np.full((len(samples), g_max), -1, dtype=np.int64)
    gt_pad[gt_local[gt_order], slot] = gt_xy[gt_order]
    gt_idx[gt_local[gt_order], slot] = gt_order
    pos = np.searchsorted(samples, pred_sample)
    has_gt = (pos < len(samples)) & (samples[np.minimum(pos, len(samples) - 1)] == pred_sample)
    pred_rows = np.flatnonzero(has_gt)
    p_local = pos[pred_rows]
    # Rank of each prediction among those of its sample (pred_rows is in processing order).
    by_sample = np.argsort(p_local, kind="stable")
    p_counts = np.bincount(p_local, minlength=len(samples))
    p_starts = np.concatenate([[0], np.cumsum(p_counts)[:-1]])
    rank = np.empty(len(pred_rows), dtype=np.int64)
    rank[by_sample] = np.arange(len(pred_rows)) - np.repeat(p_starts, p_counts)
    pred_pad = np.full((len(samples), p_counts.max()), -1, dtype=np.int64)
    pred_pad[p_local, rank] = pred_rows
    free = np.broadcast_to(gt_idx >= 0, (n_t,) + gt_idx.shape).copy()  # (T, S, Gmax) not yet taken
    for k in range(pred_pad.shape[1]):
        active = np.flatnonzero(pred_pad[:, k] >= 0)
        p = pred_pad[active, k]
        diff = pred_xy[p][:, None, :] - gt_pad[active]
        d = np.sqrt(np.sum(diff * diff, axis=2))  # (A, Gmax)
        for t in range(n_t):
            dm = np.where(free[t, active], d, np.inf)
            j = np.argmin(dm, axis=1)  # first GT on equal distance, as the devkit
            dmin = dm[np.arange(len(active)), j]
            hit = dmin < thresholds[t]
            free[t, active[hit], j[hit]] = False
            match[t, p[hit]] = gt_idx[active[hit], j[hit]]
            dist[t, p[hit]] = dmin[hit]
    return match, dist


def _cummean(x: np.ndarray) -> np.ndarray:
    """Running mean ignoring NaN; all-NaN -> ones (the error counts as 1 at every operating point)."""
    valid = ~np.isnan(x)
    if not valid.any():
        return np.ones(len(x))
    sums = np.cumsum(np.where(valid, x, 0.0))
    counts = np.cumsum(valid)
    return np.divide(sums, counts, out=np.zeros_like(sums), where=counts != 0)


def match_errors(gt: BoxArrays, pred: BoxArrays, gt_rows, pred_rows, dist, symmetric: bool) -> dict:
    """TP errors of matched pairs.

    Args:
        gt_rows, pred_rows: (K,) int64 matched rows; dist: (K,) xy centre distances.
        symmetric: orientation period pi (barriers) instead of 2 pi.
    Returns:
        dict of (K,) float64 arrays: trans_err, scale_err, orient_err, vel_err, attr_err.
    """
    gs, ps = gt.size[gt_rows], pred.size[pred_rows]
    inter = np.prod(np.minimum(gs, ps), axis=1)
    iou = inter / (np.prod(gs, axis=1) + np.prod(ps, axis=1) - inter)
    dv = pred.velocity[pred_rows] - gt.velocity[gt_rows]
    gattr = gt.attr[gt_rows]
    attr_err = np.where(gattr < 0, np.nan, (gattr != pred.attr[pred_rows]).astype(np.float64))
    return {
        "trans_err": dist,
        "scale_err": 1.0 - iou,
        "orient_err": angle_diff(gt.yaw[gt_rows], pred.yaw[pred_rows], np.pi if symmetric else 2 * np.pi),
        "vel_err": np.sqrt(np.sum(dv * dv, axis=1)),
        "attr_err": attr_err,
    }


def class_curves(gt: BoxArrays, pred: BoxArrays, label: int, thresholds, th_tp_index: int,
                 symmetric: bool) -> list:
    """Curves of one class at every distance threshold.

    Args:
        gt, pred: filtered box arrays (all classes; rows of ``label`` are used).
        thresholds: (T,) distance thresholds; th_tp_index: index of ``dist_th_tp`` in them.
    Returns:
        list of T ``ClassCurves``; only the one at ``th_tp_index`` carries real TP errors.
    """
    g_rows = np.flatnonzero(gt.label == label)
    p_rows = np.flatnonzero(pred.label == label)
    if len(g_rows) == 0:
        return [ClassCurves.no_predictions() for _ in thresholds]
    p_rows = p_rows[processing_order(pred.score[p_rows])]
    match, dist = greedy_match(pred.sample[p_rows], pred.translation[p_rows, :2],
                               gt.sample[g_rows], gt.translation[g_rows, :2], thresholds)
    conf = pred.score[p_rows]
    recall_grid = np.linspace(0.0, 1.0, N_POINTS)
    out = []
    for t in range(len(thresholds)):
        is_tp = match[t] >= 0
        if not is_tp.any():
            out.append(ClassCurves.no_predictions())
            continue
        tp = np.cumsum(is_tp).astype(np.float64)
        fp = np.cumsum(~is_tp).astype(np.float64)
        # np.interp on the raw (non-strictly increasing) recall steps, exactly as the devkit does.
        rec = tp / len(g_rows)
        prec_i = np.interp(recall_grid, rec, tp / (tp + fp), right=0)
        conf_i = np.interp(recall_grid, rec, conf, right=0)
        errors = {}
        if t == th_tp_index:
            tp_idx = np.flatnonzero(is_tp)
            errs = match_errors(gt, pred, g_rows[match[t, tp_idx]], p_rows[tp_idx], dist[t, tp_idx], symmetric)
            tp_conf = conf[tp_idx]
            for name, e in errs.items():
                # Running mean along descending confidence, read off at each operating point's confidence.
                errors[name] = np.interp(conf_i[::-1], tp_conf[::-1], _cummean(e)[::-1])[::-1]
        out.append(ClassCurves(prec_i, conf_i, errors))
    return out


def average_precision(curves: ClassCurves, min_recall: float, min_precision: float) -> float:
    """Normalised area under the precision curve above min_recall and min_precision."""
    prec = curves.precision[round(100 * min_recall) + 1:]  # +1: the min_recall point itself is excluded
    return float(np.mean(np.clip(prec - min_precision, 0.0, None))) / (1.0 - min_precision)


def tp_error(curves: ClassCurves, min_recall: float, name: str) -> float:
    """Mean of a TP error curve from just above min_recall to the highest recall reached."""
    first = round(100 * min_recall) + 1
    nonzero = np.flatnonzero(curves.confidence)
    last = nonzero[-1] if len(nonzero) else 0  # last operating point with a prediction
    if last < first:
        return 1.0
    return float(np.mean(curves.errors[name][first:last + 1]))
