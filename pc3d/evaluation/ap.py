"""Precision/recall per score cut-off and the Waymo average precision (area under the P/R envelope).

Semantics follow the official ``ToDetectionMetrics`` / ``ComputeMeanAveragePrecision``
(waymo-open-dataset ``metrics/detection_metrics.cc``, ``metrics/metrics_utils.cc``), computed in float32
like the official C++ so that values equal to the last bit where it matters (recall keys are compared
for equality):

- precision = TP / (TP + FP) (0 when nothing is predicted); APH uses the heading-accuracy sum in place
  of TP in the numerator; recall = TP / (TP + FN) for both (0 when there is no ground truth);
  a point with recall 0 gets precision 1;
- the curve is the map recall -> max precision, plus the point (recall 0, precision 1); walking from
  high to low recall it keeps the running max of precision (the envelope) and inserts extra points every
  ``recall_delta`` across gaps wider than ``recall_delta``; the fake point at recall 0 takes the
  precision of its neighbour; AP is the trapezoid area under these points. There is no extension to
  recall 1: a detector that never reaches recall r gets no area beyond r.
"""
from typing import Tuple

import numpy as np

_F = np.float32


def precision_recall(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray,
                     sum_ha: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(C,)`` counts per cut-off -> ``(precision, precision_ha, recall)``, each ``(C,) float32``."""
    tp, fp, fn = (np.asarray(a, np.float64) for a in (tp, fp, fn))
    n_pred, n_gt = tp + fp, tp + fn
    with np.errstate(divide="ignore", invalid="ignore"):
        prec = np.where(n_pred > 0, (tp / n_pred).astype(_F), _F(0))
        prec_ha = np.where(n_pred > 0, (np.asarray(sum_ha, np.float64) / n_pred).astype(_F), _F(0))
        rec = np.where(n_gt > 0, (tp / n_gt).astype(_F), _F(0))
    prec = np.where(rec == 0, _F(1), prec).astype(_F)
    prec_ha = np.where(rec == 0, _F(1), prec_ha).astype(_F)
    return prec, prec_ha, rec.astype(_F)


def average_precision(precisions: np.ndarray, recalls: np.ndarray, recall_delta: float = 0.05) -> float:
    """Area under the max-precision envelope of ``(C,)`` precision/recall points (float32 arithmetic)."""
    if len(precisions) == 0:
        return 0.0
    curve = {_F(0): _F(1)}  # recall -> best precision at that recall
    for p, r in zip(np.asarray(precisions, _F), np.asarray(recalls, _F)):
        curve[r] = max(curve.get(r, _F(0)), p)
    delta, tol = _F(recall_delta), _F(1e-6)
    points = []  # (precision, recall), recall descending
    last_recall = min(curve)  # always 0: the first (highest) recall never gets filler points
    best = _F(0)
    for r in sorted(curve, reverse=True):
        while _F(last_recall - r) > _F(delta + tol):
            last_recall = _F(last_recall - delta)
            points.append((best, last_recall))
        best = max(best, curve[r])
        points.append((best, r))
        last_recall = r
    if len(points) >= 2:  # the (recall 0, precision 1) point is not real data
        points[-1] = (points[-2][0], points[-1][1])
    area = _F(0)
    for (p0, r0), (p1, r1) in zip(points[:-1], points[1:]):
        area = _F(area + 0.5 * float(_F(r0 - r1)) * float(_F(p0 + p1)))
    return float(area)
