"""Where a detector's boxes go wrong: each ground truth against its nearest prediction.

AP / APH (``waymo.py``) say how good a detector is; this says what kind of error costs it: boxes that
are not found, centres that are off, headings that are off or reversed, sizes. Not an official metric.

For each ground truth with at least one LiDAR point (the boxes the Waymo metric evaluates, both levels),
its match is the prediction of its class in its frame with ``score >= score_thr`` whose BEV centre is
nearest, when within ``max_distance`` m. A prediction may be nearest to two ground truths: this describes
errors, it does not count detections. Per class (``CLASS_NAMES``):

- ``num_gt``: ground truths; ``found``: share of them with a match;
- ``centre_m``: median 3D centre distance of the matches, m;
- ``heading_deg``: median heading error, wrapped to [0, 180] deg; ``reversed``: share of matches off by
  more than 90 deg (the box points the other way, which APH weighs near 0 and AP does not see);
- ``length_m``, ``width_m``, ``height_m``: median absolute size errors, m;
- ``iou_hit``: share of ground truths with some prediction (``score >= score_thr``) at 3D IoU at least the
  class's AP threshold (Vehicle 0.7, Pedestrian and Cyclist 0.5).

Medians over no matches are NaN.
"""
from typing import Dict, Optional

import numpy as np

from pc3d.evaluation.waymo_inputs import (CLASS_NAMES, DEFAULT_IOU_THRESHOLDS, LABEL_TO_TYPE, IoUFn, default_iou_fn,
                                          prepare_gt, prepare_pred)

FIELDS = ("num_gt", "found", "centre_m", "heading_deg", "reversed", "length_m", "width_m", "height_m", "iou_hit")


def _median(values: np.ndarray) -> float:
    return float(np.median(values)) if len(values) else float("nan")


def _nearest_per_frame(gt_box, gt_frame, pred_box, pred_frame, iou_fn: IoUFn):
    """For each ground truth (G,): BEV distance to the nearest prediction of its frame (inf without one), that
    prediction's row (-1), and the best 3D IoU with any prediction of the frame (0)."""
    n = len(gt_box)
    dist, nearest, best_iou = np.full(n, np.inf), np.full(n, -1, np.int64), np.zeros(n)
    for frame in np.unique(gt_frame):
        gi, pi = np.nonzero(gt_frame == frame)[0], np.nonzero(pred_frame == frame)[0]
        if not len(pi):
            continue
        d = np.linalg.norm(gt_box[gi, None, :2] - pred_box[None, pi, :2], axis=-1)  # (g, p)
        j = d.argmin(axis=1)
        dist[gi], nearest[gi] = d[np.arange(len(gi)), j], pi[j]
        best_iou[gi] = np.asarray(iou_fn(gt_box[gi], pred_box[pi])).max(axis=1)
    return dist, nearest, best_iou


def box_errors(gt, pred, score_thr: float = 0.3, max_distance: float = 2.0, iou_fn: Optional[IoUFn] = None,
               iou_thresholds: Optional[Dict[int, float]] = None) -> Dict[str, Dict[str, float]]:
    """Per-class error breakdown (see the module docstring) of golden-layout ``gt`` and ``pred`` dicts
    (``waymo.py``: ``frame_id``, ``type``, ``bbox (N, 7)``, gt ``num_points``, pred ``score``).

    Returns ``{class name: {field: value}}`` for the fields of ``FIELDS``.
    """
    if not max_distance > 0:
        raise ValueError(f"max_distance must be > 0 m, got {max_distance}")
    g, p = prepare_gt(gt), prepare_pred(pred)
    keep = p["score"] >= score_thr
    p = {k: v[keep] for k, v in p.items()}
    iou_fn = iou_fn or default_iou_fn
    thresholds = {**DEFAULT_IOU_THRESHOLDS, **(iou_thresholds or {})}
    out = {}
    for waymo_type, name in zip(LABEL_TO_TYPE.tolist(), CLASS_NAMES):
        gm, pm = g["type"] == waymo_type, p["type"] == waymo_type
        gt_box, pred_box = g["bbox"][gm].astype(np.float64), p["bbox"][pm].astype(np.float64)
        dist, nearest, best_iou = _nearest_per_frame(gt_box, g["frame_id"][gm], pred_box, p["frame_id"][pm], iou_fn)
        found = dist <= max_distance
        matched_gt, matched_pred = gt_box[found], pred_box[nearest[found]]
        heading = np.abs(np.mod(matched_pred[:, 6] - matched_gt[:, 6] + np.pi, 2 * np.pi) - np.pi)
        size = np.abs(matched_pred[:, 3:6] - matched_gt[:, 3:6])
        num = len(gt_box)
        out[name] = {
            "num_gt": float(num),
            "found": float(found.mean()) if num else float("nan"),
            "centre_m": _median(np.linalg.norm(matched_pred[:, :3] - matched_gt[:, :3], axis=1)),
            "heading_deg": _median(np.degrees(heading)),
            "reversed": float((heading > np.pi / 2).mean()) if len(heading) else float("nan"),
            "length_m": _median(size[:, 0]), "width_m": _median(size[:, 1]), "height_m": _median(size[:, 2]),
            "iou_hit": float((best_iou >= thresholds[waymo_type]).mean()) if num else float("nan"),
        }
    return out


def format_box_errors(errors: Dict[str, Dict[str, float]]) -> str:
    """A table: one row per class, one column per field."""
    head = f"{'class':<11}" + "".join(f"{f:>12}" for f in FIELDS)
    rows = [head, "-" * len(head)]
    for name, values in errors.items():
        rows.append(f"{name:<11}" + "".join(
            f"{values[f]:>12.0f}" if f == "num_gt" else f"{values[f]:>12.3f}" for f in FIELDS))
    return "\n".join(rows)
