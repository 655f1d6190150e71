"""Per-score-cut-off Hungarian matching for the Waymo detection metric, without a loop over cut-offs.

The official metric (waymo-open-dataset ``detection_metrics.cc``) redoes, for every score cut-off
``c`` and every frame, a maximum-weight bipartite matching between the predictions with
``score >= c`` and the ground truths of one class. The weight of a pair is its 3D IoU quantised to
``round(iou * 1e6)`` when ``iou >= threshold`` and 0 otherwise; pairs matched at weight 0 are dropped.

A maximum-weight matching decomposes over the connected components of the graph of pairs with
``iou >= threshold`` (edges), so we only ever solve components, and a component's matching changes only
at the cut-offs where one of its own predictions drops out:

- components with one ground truth or one prediction (almost all of them) match their single best edge
  among the present predictions: a running arg-max over the component's edges sorted by score, done for
  every component at once in numpy;
- larger components are solved with ``scipy.optimize.linear_sum_assignment`` once per distinct score
  level of their predictions (not per cut-off).

Every matching result holds on a range ``[lo, hi)`` of cut-off indices and is added to difference
arrays, so the per-cut-off counts come out of one cumulative sum.
"""
from typing import Dict

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

# The official matcher quantises IoU to integers in [0, kMaxIoU] before the Hungarian algorithm.
IOU_QUANTUM = 1000 * 1000


def heading_accuracy(pred_heading: np.ndarray, gt_heading: np.ndarray) -> np.ndarray:
    """``1 - |dh| / pi`` with the heading difference wrapped to [0, pi]; shapes broadcast, float64."""
    diff = np.abs(np.mod(np.asarray(pred_heading, np.float64) - gt_heading + np.pi, 2 * np.pi) - np.pi)
    return np.clip(1.0 - diff / np.pi, 0.0, 1.0)


def presence_levels(scores: np.ndarray, cutoffs: np.ndarray) -> np.ndarray:
    """``(P,) int64`` k such that a prediction is kept at cut-off index ``i`` iff ``i < k``.

    ``scores (P,) float32``, ``cutoffs (C,) float32`` ascending; kept means ``score >= cutoff``,
    compared in float32 as the official op does (scores equal to a cut-off are kept).
    """
    return np.searchsorted(cutoffs.astype(np.float32), scores.astype(np.float32), side="right").astype(np.int64)


def _add_ranges(diff: np.ndarray, lo: np.ndarray, hi: np.ndarray, val: np.ndarray) -> None:
    """Add ``val`` to ``diff``'s prefix-sum on every index range ``[lo, hi)``."""
    np.add.at(diff, lo, val)
    np.add.at(diff, hi, -val)


def cutoff_measurements(edge_pred: np.ndarray, edge_gt: np.ndarray, edge_weight: np.ndarray,
                        pred_level: np.ndarray, pred_heading: np.ndarray, gt_heading: np.ndarray,
                        gt_difficulty: np.ndarray, num_cutoffs: int) -> Dict[str, np.ndarray]:
    """Matched counts per score cut-off for one class over all frames.

    Args:
        edge_pred, edge_gt: ``(E,) int64`` global prediction / ground-truth index of every pair in the
            same frame with ``iou >= threshold`` (pairs in different frames must not appear).
        edge_weight: ``(E,) int64`` quantised IoU ``round(iou * 1e6)``, > 0.
        pred_level: ``(P,) int64`` from :func:`presence_levels`.
        pred_heading ``(P,)``, gt_heading ``(G,)``: yaw in radians.
        gt_difficulty: ``(G,) int64`` difficulty level (1 or 2; 0 counts as 1).
        num_cutoffs: C.

    Returns:
        dict of ``(C,)`` float64 arrays: ``tp`` (matched pairs), ``tp_l1`` (matched ground truths of
        LEVEL_1), ``sum_ha`` (sum of heading accuracy of the matched pairs), ``num_pred`` (predictions
        kept at the cut-off).
    """
    C = num_cutoffs
    P, G = len(pred_level), len(gt_heading)
    out = {"num_pred": np.cumsum(np.bincount(pred_level, minlength=C + 1)[::-1])[::-1][1:].astype(np.float64)}
    diffs = {k: np.zeros(C + 1) for k in ("tp", "tp_l1", "sum_ha")}
    edge_pred = np.asarray(edge_pred, np.int64)
    edge_gt = np.asarray(edge_gt, np.int64)
    if len(edge_pred):
        edge_weight = np.asarray(edge_weight, np.int64)
        edge_ha = heading_accuracy(pred_heading[edge_pred], gt_heading[edge_gt])
        edge_l1 = (gt_difficulty[edge_gt] <= 1).astype(np.float64)
        # Components of the bipartite graph: predictions are nodes [0, P), ground truths [P, P + G).
        graph = coo_matrix((np.ones(len(edge_pred)), (edge_pred, P + edge_gt)), shape=(P + G, P + G))
        _, node_comp = connected_components(graph, directed=False)
        comp = node_comp[edge_pred]
        n_comp = node_comp.max() + 1
        n_pred = np.bincount(node_comp[np.unique(edge_pred)], minlength=n_comp)
        n_gt = np.bincount(node_comp[P + np.unique(edge_gt)], minlength=n_comp)
        single = np.minimum(n_pred, n_gt)[comp] == 1
        e_val = {"tp": np.ones(len(edge_pred)), "tp_l1": edge_l1, "sum_ha": edge_ha}
        _single_match_components(comp[single], edge_pred[single], edge_gt[single],
                                 pred_level[edge_pred[single]], edge_weight[single],
                                 {k: v[single] for k, v in e_val.items()}, diffs)
        _general_components(comp[~single], edge_pred[~single], edge_gt[~single], edge_weight[~single],
                            pred_level, {k: v[~single] for k, v in e_val.items()}, diffs)
    for k, d in diffs.items():
        out[k] = np.cumsum(d)[:C]
    return out


def _single_match_components(comp, edge_pred, edge_gt, level, weight, values, diffs) -> None:
    """Components whose matching is one pair: the best-weight edge among the kept predictions.

    Ties go to the lowest prediction index, then the lowest ground-truth index: the official
    Hungarian (``hungarian.cc``) serves predictions in input order, so the first one keeps a contested
    ground truth, and a row takes the first of equally good columns.
    """
    if len(comp) == 0:
        return
    # Tie priority: position of the edge within its component in (prediction, ground truth) order.
    order = np.lexsort((edge_gt, edge_pred, comp))
    first = np.r_[True, comp[order][1:] != comp[order][:-1]]
    pos = np.arange(len(order))
    tie = np.empty(len(order), np.int64)
    tie[order] = pos - np.maximum.accumulate(np.where(first, pos, 0))
    span = int(tie.max()) + 1
    # Sort by component, then by presence level descending (highest scores join first).
    order = np.lexsort((-level, comp))
    comp, level = comp[order], level[order]
    key_local = weight[order] * span + (span - 1 - tie[order])
    values = {k: v[order] for k, v in values.items()}
    # Running arg-max within each component: lift each component above the previous one so that one
    # global maximum.accumulate restarts at component boundaries (chunked so keys fit in int64).
    rank = np.cumsum(np.r_[0, comp[1:] != comp[:-1]])
    stride = (IOU_QUANTUM + 1) * span
    per_chunk = max(1, (2 ** 62) // stride)
    best = np.empty(len(comp), np.int64)
    for c0 in range(0, int(rank[-1]) + 1, per_chunk):
        s, e = np.searchsorted(rank, [c0, c0 + per_chunk])
        key = (rank[s:e] - c0) * stride + key_local[s:e]
        run_max = np.maximum.accumulate(key)
        is_new = key > np.r_[-1, run_max[:-1]]  # strictly better: a tie keeps the incumbent
        best[s:e] = s + np.maximum.accumulate(np.where(is_new, np.arange(e - s), 0))
    # The state after the last edge of each (component, level) group holds on cut-offs
    # [next lower level in the component (or 0), level).
    last = np.r_[(comp[1:] != comp[:-1]) | (level[1:] != level[:-1]), True]
    idx = np.flatnonzero(last)
    hi = level[idx]
    same_comp_next = np.r_[comp[idx[1:]] == comp[idx[:-1]], False]
    lo = np.where(same_comp_next, np.r_[hi[1:], 0], 0)
    for k, v in values.items():
        _add_ranges(diffs[k], lo, hi, v[best[idx]])


def _general_components(comp, edge_pred, edge_gt, weight, pred_level, values, diffs) -> None:
    """Components with >= 2 predictions and >= 2 ground truths: Hungarian per distinct score level."""
    if len(comp) == 0:
        return
    order = np.argsort(comp, kind="stable")
    bounds = np.flatnonzero(np.r_[True, comp[order][1:] != comp[order][:-1], True])
    for s, e in zip(bounds[:-1], bounds[1:]):
        sel = order[s:e]
        preds, p_local = np.unique(edge_pred[sel], return_inverse=True)
        gts, g_local = np.unique(edge_gt[sel], return_inverse=True)
        w = np.zeros((len(preds), len(gts)))
        w[p_local, g_local] = weight[sel]
        edge_of = np.full((len(preds), len(gts)), -1)
        edge_of[p_local, g_local] = sel
        levels = pred_level[preds]
        distinct = np.unique(levels)[::-1]
        for j, hi in enumerate(distinct):
            lo = distinct[j + 1] if j + 1 < len(distinct) else 0
            keep = np.flatnonzero(levels >= hi)
            rows, cols = linear_sum_assignment(w[keep], maximize=True)
            matched = edge_of[keep[rows], cols]
            matched = matched[matched >= 0]
            for k, v in values.items():
                diffs[k][lo] += v[matched].sum()
                diffs[k][hi] -= v[matched].sum()


def cutoff_measurements_naive(iou_per_frame, pred_level, pred_heading, gt_heading, gt_difficulty,
                              threshold: float, num_cutoffs: int) -> Dict[str, np.ndarray]:
    """Slow reference: a full Hungarian matching for every frame and every cut-off, like the official op.

    ``iou_per_frame``: list of ``(pred_idx (p,), gt_idx (g,), iou (p, g))`` giving each frame's global
    indices and IoU matrix. Other arguments and the result as in :func:`cutoff_measurements`.
    """
    out = {k: np.zeros(num_cutoffs) for k in ("tp", "tp_l1", "sum_ha", "num_pred")}
    for pred_idx, gt_idx, iou in iou_per_frame:
        weight = np.where(iou >= threshold, np.round(iou * IOU_QUANTUM), 0)
        for i in range(num_cutoffs):
            keep = np.flatnonzero(pred_level[pred_idx] > i)
            out["num_pred"][i] += len(keep)
            if len(keep) == 0 or len(gt_idx) == 0:
                continue
            rows, cols = linear_sum_assignment(weight[keep], maximize=True)
            ok = weight[keep[rows], cols] > 0
            p, g = pred_idx[keep[rows[ok]]], gt_idx[cols[ok]]
            out["tp"][i] += len(p)
            out["tp_l1"][i] += (gt_difficulty[g] <= 1).sum()
            out["sum_ha"][i] += heading_accuracy(pred_heading[p], gt_heading[g]).sum()
    return out
