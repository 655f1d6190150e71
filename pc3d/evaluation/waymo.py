"""Waymo Open Dataset 3D detection metric (AP / APH at LEVEL_1 and LEVEL_2) without TensorFlow.

Reproduces ``waymo-open-dataset``'s ``detection_metrics`` op with the standard config (breakdown by
object type, difficulty levels 1 and 2, Hungarian matcher, 3D boxes, IoU thresholds Vehicle 0.7,
Pedestrian 0.5, Cyclist 0.5, score cut-offs 0.00, 0.01, ..., 1.00, recall delta 0.05). The official
semantics, which the golden tests pin down:

- per frame, per class and per score cut-off, the predictions with ``score >= cut-off`` are matched
  to the ground truths by a maximum-weight (Hungarian) matching on 3D rotated IoU; pairs below the
  class threshold cannot match. The matching is redone for every cut-off (see ``matching.py``);
- a matched prediction is a TP at *both* levels, whatever the difficulty of its ground truth; an
  unmatched prediction is an FP at both levels; an unmatched ground truth is an FN at level L only if
  its difficulty <= L. So LEVEL_1 ignores missed LEVEL_2 boxes but still credits finding them, and
  LEVEL_2 includes every LEVEL_1 box;
- a ground truth with <= 5 LiDAR points is LEVEL_2 (as is one marked 2); one with 0 points is dropped;
- APH weighs each TP by its heading accuracy ``1 - min(|dh|, 2 pi - |dh|) / pi`` in the precision;
- AP is the area under the max-precision envelope (``ap.py``).

Inputs use the golden layout (``tests/data/waymo_metric_golden/README.md``):
``gt``: ``frame_id (G,)`` int or str, ``type (G,)`` Waymo type 1 vehicle / 2 pedestrian / 4 cyclist,
``bbox (G, 7) float [cx, cy, cz, length, width, height, heading]``, optional ``num_points (G,)`` int and
``difficulty (G,)`` int (1 or 2); ``pred``: ``frame_id (P,)``, ``type (P,)``, ``bbox (P, 7)``,
``score (P,) float``. pc3d boxes ``(x, y, z, dx, dy, dz, heading)`` have the same column order.
"""
from typing import Dict, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from pc3d.evaluation.ap import average_precision, precision_recall
from pc3d.evaluation.matching import IOU_QUANTUM, cutoff_measurements, presence_levels
from pc3d.registry import METRICS

from pc3d.evaluation.waymo_inputs import (CLASS_NAMES, DEFAULT_IOU_THRESHOLDS, DEFAULT_SCORE_CUTOFFS,  # noqa: F401
                                          LABEL_TO_TYPE, WAYMO_TYPES, IoUFn, default_iou_fn, prepare_gt, prepare_pred)

# The official IoU is 0 for degenerate boxes (any dimension <= 1 cm) or absurd ones (>= 1e6 m).
_MIN_BOX_DIM, _MAX_BOX_DIM = 1e-2, 1e6


def _valid_dims(b: np.ndarray) -> np.ndarray:
    dims = b[:, 3:6]
    return ((dims > _MIN_BOX_DIM) & (dims < _MAX_BOX_DIM)).all(1)


def _class_edges(p_frame, p_box, g_frame, g_box, threshold, iou_fn, clip: bool = True):
    """Pairs with ``iou >= threshold`` in the same frame; frames given as sorted int codes.

    Boxes the official metric gives IoU 0 (degenerate or absurd sizes) take no part. ``clip=False`` trusts
    ``iou_fn`` to return values in [0, 1] already (the compiled op does). Returns ``(edge_pred, edge_gt, weight)``
    with indices into the (frame-sorted) class arrays.
    """
    edges_p, edges_g, weights = [], [], []
    p_keep, g_keep = np.flatnonzero(_valid_dims(p_box)), np.flatnonzero(_valid_dims(g_box))
    p_frame, p_box, g_frame, g_box = p_frame[p_keep], p_box[p_keep], g_frame[g_keep], g_box[g_keep]
    frames = np.intersect1d(p_frame, g_frame)
    p_lo, p_hi = np.searchsorted(p_frame, frames), np.searchsorted(p_frame, frames, side="right")
    g_lo, g_hi = np.searchsorted(g_frame, frames), np.searchsorted(g_frame, frames, side="right")
    threshold32 = np.float32(threshold)
    for ps, pe, gs, ge in zip(p_lo.tolist(), p_hi.tolist(), g_lo.tolist(), g_hi.tolist()):
        iou = np.asarray(iou_fn(p_box[ps:pe], g_box[gs:ge]), np.float64).reshape(pe - ps, ge - gs)
        if clip:
            iou = np.clip(iou, 0.0, 1.0)
        # The official matcher compares the float IoU with the float threshold.
        r, c = np.nonzero(iou.astype(np.float32) >= threshold32)
        edges_p.append(p_keep[r + ps])
        edges_g.append(g_keep[c + gs])
        weights.append(np.round(iou[r, c] * IOU_QUANTUM).astype(np.int64))
    if not edges_p:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(edges_p), np.concatenate(edges_g), np.concatenate(weights)


def waymo_detection_metrics(gt, pred, iou_fn: Optional[IoUFn] = None,
                            iou_thresholds: Optional[Dict[int, float]] = None,
                            score_cutoffs: Optional[Sequence[float]] = None, recall_delta: float = 0.05,
                            return_curves: bool = False) -> Dict[str, Dict[str, object]]:
    """Official-equivalent Waymo detection AP/APH.

    Args:
        gt, pred: dicts of arrays in the golden layout (module docstring).
        iou_fn: ``(a (N, 7) float32, b (M, 7) float32) -> (N, M)`` 3D IoU; default the compiled
            ``pc3d.ops.iou_3d_rotated``.
        iou_thresholds: Waymo type -> IoU threshold (default 0.7 / 0.5 / 0.5).
        score_cutoffs: ascending cut-offs (default 0.00..1.00 step 0.01).
        recall_delta: maximum recall gap before the AP curve inserts points (official 0.05).
        return_curves: also return ``precision``, ``precision_ha``, ``recall``, ``tp``, ``fp``, ``fn``
            ``(C,)`` arrays per class and level.

    Returns:
        ``{"OBJECT_TYPE_TYPE_<CLASS>_LEVEL_<L>": {"AP": float, "APH": float}, ...,
        "MEAN_LEVEL_<L>": {"AP": float, "APH": float}}`` for CLASS in VEHICLE, PEDESTRIAN, CYCLIST.
    """
    iou_fn = default_iou_fn if iou_fn is None else iou_fn
    thresholds = {**DEFAULT_IOU_THRESHOLDS, **(iou_thresholds or {})}
    cutoffs = check_score_cutoffs(score_cutoffs)
    g, p = prepare_frames(gt, pred)
    results: Dict[str, Dict[str, object]] = {}
    for wtype, name in WAYMO_TYPES.items():
        m = class_measurements(g, p, wtype, thresholds[wtype], cutoffs, iou_fn)
        for level in (1, 2):
            tp, fp, fn, sum_ha = level_counts(m, level)
            prec, prec_ha, rec = precision_recall(tp, fp, fn, sum_ha)
            entry = {"AP": average_precision(prec, rec, recall_delta),
                     "APH": average_precision(prec_ha, rec, recall_delta)}
            if return_curves:
                entry.update(precision=prec, precision_ha=prec_ha, recall=rec, tp=tp, fp=fp, fn=fn,
                             score_cutoffs=cutoffs)
            results[f"OBJECT_TYPE_TYPE_{name}_LEVEL_{level}"] = entry
    for level in (1, 2):
        keys = [f"OBJECT_TYPE_TYPE_{n}_LEVEL_{level}" for n in WAYMO_TYPES.values()]
        results[f"MEAN_LEVEL_{level}"] = {k: float(np.mean([results[c][k] for c in keys])) for k in ("AP", "APH")}
    return results


def check_score_cutoffs(score_cutoffs: Optional[Sequence[float]]) -> np.ndarray:
    """``(C,) float32`` ascending cut-offs (the official 0.00..1.00 when None); raises ValueError otherwise."""
    cutoffs = DEFAULT_SCORE_CUTOFFS if score_cutoffs is None else np.asarray(score_cutoffs, np.float32)
    if cutoffs.ndim != 1 or len(cutoffs) == 0 or (np.diff(cutoffs) < 0).any():
        raise ValueError(f"score_cutoffs must be a non-empty ascending 1-D sequence, got {cutoffs}")
    return cutoffs


def prepare_frames(gt, pred):
    """Validated golden-layout ``gt`` / ``pred`` -> ``(g, p)`` column dicts (``prepare_gt`` / ``prepare_pred``)
    with a shared integer frame code ``frame`` (ids may be ints or strings)."""
    g, p = prepare_gt(gt), prepare_pred(pred)
    _, codes = np.unique(np.concatenate([g["frame_id"].astype(str), p["frame_id"].astype(str)])
                         if g["frame_id"].dtype.kind in "USO" or p["frame_id"].dtype.kind in "USO"
                         else np.concatenate([g["frame_id"], p["frame_id"]]).astype(np.int64),
                         return_inverse=True)
    g["frame"], p["frame"] = codes[:len(g["bbox"])], codes[len(g["bbox"]):]
    return g, p


def class_measurements(g, p, wtype: int, threshold: float, cutoffs: np.ndarray,
                       iou_fn: IoUFn) -> Dict[str, object]:
    """One Waymo type's matched counts per cut-off over the frames of ``(g, p)`` (``prepare_frames``).

    Returns ``cutoff_measurements``' ``(C,)`` arrays (``tp``, ``tp_l1``, ``sum_ha``, ``num_pred``) plus the
    ground-truth counts ``num_gt`` (both levels) and ``num_gt_l1``.
    """
    gi = np.flatnonzero(g["type"] == wtype)
    pi = np.flatnonzero(p["type"] == wtype)
    gi, pi = gi[np.argsort(g["frame"][gi], kind="stable")], pi[np.argsort(p["frame"][pi], kind="stable")]
    gb, pb = g["bbox"][gi], p["bbox"][pi]
    e_p, e_g, w = _class_edges(p["frame"][pi], pb, g["frame"][gi], gb, threshold, iou_fn,
                               clip=iou_fn is not default_iou_fn)
    m = cutoff_measurements(e_p, e_g, w, presence_levels(p["score"][pi], cutoffs), pb[:, 6], gb[:, 6],
                            g["level"][gi], len(cutoffs))
    m["num_gt"] = len(gi)
    m["num_gt_l1"] = int(np.count_nonzero(g["level"][gi] <= 1))
    return m


def level_counts(m, level: int):
    """``class_measurements`` (or sums of them over frames) -> ``(tp, fp, fn, sum_ha)`` at LEVEL ``level``.

    Matched predictions are TPs at both levels; a missed ground truth is an FN only at levels >= its own.
    Arrays of any leading shape ``(..., C)`` (``num_gt*`` then ``(...)``) are accepted.
    """
    fp = m["num_pred"] - m["tp"]
    if level == 1:
        fn = np.asarray(m["num_gt_l1"])[..., None] - m["tp_l1"]
    elif level == 2:
        fn = np.asarray(m["num_gt"])[..., None] - m["tp"]
    else:
        raise ValueError(f"level must be 1 or 2, got {level}")
    return m["tp"], fp, fn, m["sum_ha"]


def flatten_waymo_metrics(results: Dict[str, Dict[str, object]]) -> Dict[str, float]:
    """``waymo_detection_metrics`` output -> ``{'Vehicle/L1_AP': x, ..., 'mAP_L1': m, 'mAPH_L2': m}``."""
    flat = {}
    for cname, wname in zip(CLASS_NAMES, WAYMO_TYPES.values()):
        for level in (1, 2):
            r = results[f"OBJECT_TYPE_TYPE_{wname}_LEVEL_{level}"]
            flat[f"{cname}/L{level}_AP"] = float(r["AP"])
            flat[f"{cname}/L{level}_APH"] = float(r["APH"])
    for level in (1, 2):
        flat[f"mAP_L{level}"] = float(results[f"MEAN_LEVEL_{level}"]["AP"])
        flat[f"mAPH_L{level}"] = float(results[f"MEAN_LEVEL_{level}"]["APH"])
    return flat


def format_waymo_table(metrics: Dict[str, float]) -> str:
    """Fixed-width table of a flat metric dict (``flatten_waymo_metrics`` / ``WaymoMetric`` output)."""
    head = f"{'Class':<12}{'L1 AP':>9}{'L1 APH':>9}{'L2 AP':>9}{'L2 APH':>9}"
    rows = [head, "-" * len(head)]
    for c in CLASS_NAMES:
        rows.append(f"{c:<12}" + "".join(f"{metrics[f'{c}/L{lv}_{k}']:>9.4f}" for lv in (1, 2) for k in ("AP", "APH")))
    rows.append("-" * len(head))
    rows.append(f"{'Mean':<12}" + "".join(f"{metrics[f'm{k}_L{lv}']:>9.4f}" for lv in (1, 2) for k in ("AP", "APH")))
    return "\n".join(rows)


def _get(sample, key):
    return sample[key] if isinstance(sample, dict) else getattr(sample, key)


def _np(x, dtype=None):
    a = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
    return a if dtype is None else a.astype(dtype)


@METRICS.register_module()
class WaymoMetric(BaseMetric):
    """mmengine metric computing Waymo AP/APH from a detector's per-frame outputs.

    ``process`` takes data samples (dicts, or objects with these attributes): ``pred_boxes (K, 7)``
    float ``[x, y, z, dx, dy, dz, heading]``, ``pred_scores (K,)``, ``pred_labels (K,) int64`` (0
    Vehicle, 1 Pedestrian, 2 Cyclist), ``gt_boxes (M, 7)``, ``gt_labels (M,)``, ``gt_num_points (M,)``,
    ``gt_difficulty (M,)`` (1 or 2), ``frame_id``. ``compute_metrics`` returns ``{'Vehicle/L1_AP': ...,
    'mAP_L1': ..., 'mAPH_L2': ...}`` and logs a table.

    ``error_breakdown=True`` also logs where the boxes go wrong (``box_errors``: share found, centre,
    heading and size errors of each ground truth's nearest prediction with ``score >= error_score_thr``) and
    adds its fields as ``'Vehicle/nearest_centre_m'``, ...

    ``dump_file='path.npz'`` also saves every frame's predictions and ground truth there
    (``detections_io.save_detections``), so that runs can be compared on the same frames afterwards
    (``tools/compare_detections.py``: bootstrap intervals of AP and of AP differences).
    """

    default_prefix: Optional[str] = None  # keys stay "Vehicle/L1_AP", "mAPH_L2", ... unless a prefix is given

    def __init__(self, iou_thresholds: Optional[Dict[int, float]] = None, iou_fn: Optional[IoUFn] = None,
                 collect_device: str = "cpu", prefix: Optional[str] = None, error_breakdown: bool = False,
                 error_score_thr: float = 0.3, dump_file: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if dump_file is not None and not str(dump_file).endswith(".npz"):
            raise ValueError(f"dump_file must end with .npz, got {dump_file!r}")
        self.dump_file = dump_file
        self.iou_thresholds = iou_thresholds
        self.iou_fn = iou_fn
        self.error_breakdown = bool(error_breakdown)
        self.error_score_thr = float(error_score_thr)

    def process(self, data_batch, data_samples: Sequence) -> None:
        for s in data_samples:
            self.results.append({
                "frame_id": str(_get(s, "frame_id")),
                "pred_boxes": _np(_get(s, "pred_boxes"), np.float32).reshape(-1, 7),
                "pred_scores": _np(_get(s, "pred_scores"), np.float32).reshape(-1),
                "pred_labels": _np(_get(s, "pred_labels"), np.int64).reshape(-1),
                "gt_boxes": _np(_get(s, "gt_boxes"), np.float32).reshape(-1, 7),
                "gt_labels": _np(_get(s, "gt_labels"), np.int64).reshape(-1),
                "gt_num_points": _np(_get(s, "gt_num_points"), np.int64).reshape(-1),
                "gt_difficulty": _np(_get(s, "gt_difficulty"), np.int64).reshape(-1),
            })

    def compute_metrics(self, results: list) -> Dict[str, float]:
        if self.dump_file is not None:
            # Before the metric: the frames are kept even if the metric raises on them.
            from pc3d.evaluation.detections_io import save_detections

            print_log(f"saved {len(results)} frames' detections to {save_detections(self.dump_file, results)}",
                      logger="current")
        gt, pred = waymo_inputs_from_frames(results)
        flat = flatten_waymo_metrics(waymo_detection_metrics(gt, pred, iou_fn=self.iou_fn,
                                                             iou_thresholds=self.iou_thresholds))
        print_log("Waymo detection metrics\n" + format_waymo_table(flat), logger="current")
        if self.error_breakdown:
            from pc3d.evaluation.box_errors import box_errors, format_box_errors

            errors = box_errors(gt, pred, score_thr=self.error_score_thr, iou_fn=self.iou_fn,
                                iou_thresholds=self.iou_thresholds)
            print_log(f"Each ground truth's nearest prediction (score >= {self.error_score_thr})\n"
                      + format_box_errors(errors), logger="current")
            flat.update({f"{name}/nearest_{field}": value for name, fields in errors.items()
                         for field, value in fields.items()})
        return flat


def waymo_inputs_from_frames(frames: Sequence[dict]):
    """Per-frame dicts (as stored by ``WaymoMetric.process``) -> ``(gt, pred)`` golden-layout dicts.

    Frames are numbered by position, so repeated ``frame_id`` strings stay separate frames.
    """
    for f in frames:
        for key, n in (("pred_labels", len(f["pred_boxes"])), ("gt_labels", len(f["gt_boxes"]))):
            lab = f[key]
            if len(lab) != n or (len(lab) and (lab.min() < 0 or lab.max() >= len(LABEL_TO_TYPE))):
                raise ValueError(f"frame {f['frame_id']}: {key} must be {n} ints in [0, 3), got {lab}")

    def cat(key, width=None, dtype=np.float32):
        arrs = [f[key] for f in frames]
        if not arrs:
            return np.zeros((0, width) if width else 0, dtype)
        return np.concatenate(arrs).astype(dtype)

    def frame_index(key):
        return np.concatenate([np.full(len(f[key]), i) for i, f in enumerate(frames)] or [[]]).astype(np.int64)

    gt_frame, pred_frame = frame_index("gt_boxes"), frame_index("pred_boxes")
    gt = {"frame_id": gt_frame, "type": LABEL_TO_TYPE[cat("gt_labels", dtype=np.int64)],
          "bbox": cat("gt_boxes", 7), "num_points": cat("gt_num_points", dtype=np.int64),
          "difficulty": cat("gt_difficulty", dtype=np.int64)}
    pred = {"frame_id": pred_frame, "type": LABEL_TO_TYPE[cat("pred_labels", dtype=np.int64)],
            "bbox": cat("pred_boxes", 7), "score": cat("pred_scores")}
    return gt, pred
