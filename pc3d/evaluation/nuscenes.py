"""nuScenes detection metric: mAP, ATE/ASE/AOE/AVE/AAE, NDS per class, equal to ``nuscenes-devkit``.

Inputs are in the official global-frame box format (see ``nuscenes_boxes`` for the fields). From pc3d
LiDAR-frame detections ``(x, y, z, dx, dy, dz, heading, vx, vy)`` use
``nuscenes_io.lidar_detections_to_fields(boxes, scores, labels, ego2global @ lidar2ego)``:
``translation = R p + t``, ``size = (dy, dx, dz)`` (nuScenes w, l, h), ``rotation = quat(R Rz(heading))``,
``velocity = (R v)[:2]``.

Pipeline (official ``detection_cvpr_2019`` rules): predictions must cover exactly the GT samples, at
most 500 boxes each; GT and predictions are filtered by class range around the ego position, GT
with 0 LiDAR+radar points and cycles in bike racks are dropped; per class and distance threshold
0.5/1/2/4 m greedy matching gives a PR curve (AP) and, at 2 m, the TP errors; NDS =
(5 mAP + sum_k (1 - min(1, mTP_k))) / 10. The matching lives in ``nuscenes_matching``.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from pc3d.registry import METRICS

from .nuscenes_boxes import (DETECTION_NAMES, EXCLUDED_TP, TP_METRICS, NuScenesEvalConfig, filter_boxes,
                             flatten_boxes)
from .nuscenes_io import lidar_detections_to_fields, write_submission
from .nuscenes_matching import average_precision, class_curves, tp_error

TP_SHORT = {"trans_err": "mATE", "scale_err": "mASE", "orient_err": "mAOE", "vel_err": "mAVE", "attr_err": "mAAE"}


def nuscenes_detection_metrics(gt: Mapping[str, object], pred: Mapping[str, object],
                               ego_translation: Mapping[str, Sequence[float]],
                               bike_racks: Mapping[str, Mapping] | None = None,
                               config: NuScenesEvalConfig | None = None) -> dict:
    """The official nuScenes detection metrics.

    Args:
        gt: ``sample_token -> GT box fields`` (global frame; ``num_pts`` for the 0-point filter).
        pred: ``sample_token -> predicted box fields`` with ``detection_score``; the same tokens as
            ``gt``. Its token order, then box order, breaks score ties (as in the submission file).
        ego_translation: ``sample_token -> (3,)`` global ego position of the LIDAR_TOP keyframe.
        bike_racks: optional ``sample_token -> {translation, size, rotation}`` of bicycle racks.
        config: evaluation settings; default the official ``detection_cvpr_2019``.
    Returns:
        dict: ``mAP``, ``NDS``; ``label_aps`` {class: {dist_th: AP}}; ``mean_dist_aps`` {class: AP};
        ``label_tp_errors`` {class: {metric: err or NaN}}; ``tp_errors`` {metric: mean over classes};
        ``tp_scores`` {metric: max(0, 1 - err)}; ``num_gt``/``num_pred`` {class: boxes after filtering}.
    """
    cfg = config or NuScenesEvalConfig()
    if set(pred) != set(gt):
        missing, extra = sorted(set(gt) - set(pred)), sorted(set(pred) - set(gt))
        raise ValueError(f"pred must have exactly the GT samples: missing {missing[:5]} ({len(missing)}), "
                         f"extra {extra[:5]} ({len(extra)})")
    g = flatten_boxes(gt, is_gt=True)
    p = flatten_boxes(pred, is_gt=False)
    counts = np.bincount(p.sample, minlength=len(p.tokens))
    if len(counts) and counts.max() > cfg.max_boxes_per_sample:
        worst = p.tokens[int(np.argmax(counts))]
        raise ValueError(f"sample {worst!r} has {counts.max()} predictions; at most "
                         f"{cfg.max_boxes_per_sample} per sample are allowed")
    # Put predictions in the GT's sample numbering (row order, hence tie-breaking, is unchanged).
    index = {t: i for i, t in enumerate(g.tokens)}
    p.sample = np.array([index[t] for t in p.tokens], dtype=np.int64)[p.sample]
    p.tokens = g.tokens
    missing = [t for t in g.tokens if t not in ego_translation]
    if missing:
        raise ValueError(f"ego_translation lacks samples {missing[:5]} ({len(missing)})")
    ego = np.array([np.asarray(ego_translation[t], dtype=np.float64).reshape(3) for t in g.tokens]).reshape(-1, 3)
    g = filter_boxes(g, ego, cfg, bike_racks)
    p = filter_boxes(p, ego, cfg, bike_racks)

    ths = tuple(float(t) for t in cfg.dist_ths)
    th_tp = ths.index(float(cfg.dist_th_tp))
    label_aps, label_tp = {}, {}
    for c, name in enumerate(DETECTION_NAMES):
        curves = class_curves(g, p, c, ths, th_tp, symmetric=(name == "barrier"))
        label_aps[name] = {th: average_precision(cv, cfg.min_recall, cfg.min_precision)
                           for th, cv in zip(ths, curves)}
        label_tp[name] = {m: (float("nan") if m in EXCLUDED_TP.get(name, ()) else
                              tp_error(curves[th_tp], cfg.min_recall, m)) for m in TP_METRICS}
    mean_dist_aps = {n: float(np.mean(list(label_aps[n].values()))) for n in DETECTION_NAMES}
    m_ap = float(np.mean(list(mean_dist_aps.values())))
    tp_errors = {m: float(np.nanmean([label_tp[n][m] for n in DETECTION_NAMES])) for m in TP_METRICS}
    tp_scores = {m: max(0.0, 1.0 - e) for m, e in tp_errors.items()}
    nds = (cfg.mean_ap_weight * m_ap + sum(tp_scores.values())) / (cfg.mean_ap_weight + len(tp_scores))
    return {
        "mAP": m_ap, "NDS": float(nds), "label_aps": label_aps, "mean_dist_aps": mean_dist_aps,
        "label_tp_errors": label_tp, "tp_errors": tp_errors, "tp_scores": tp_scores,
        "num_gt": {n: int(np.sum(g.label == c)) for c, n in enumerate(DETECTION_NAMES)},
        "num_pred": {n: int(np.sum(p.label == c)) for c, n in enumerate(DETECTION_NAMES)},
    }


def format_nuscenes_table(result: dict) -> str:
    """Per-class table (AP per threshold, mean AP, TP errors) with the summary lines, as text."""
    ths = list(next(iter(result["label_aps"].values())).keys())
    head = ["class", "#gt", "#pred"] + [f"AP@{t:g}" for t in ths] + ["AP"] + [TP_SHORT[m][1:] for m in TP_METRICS]
    rows = []
    for n in DETECTION_NAMES:
        aps = [f"{result['label_aps'][n][t]:.4f}" for t in ths]
        errs = [("nan" if np.isnan(v) else f"{v:.4f}") for v in result["label_tp_errors"][n].values()]
        rows.append([n, str(result["num_gt"][n]), str(result["num_pred"][n])] + aps
                    + [f"{result['mean_dist_aps'][n]:.4f}"] + errs)
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in [head] + rows]
    lines.append(f"mAP: {result['mAP']:.4f}  NDS: {result['NDS']:.4f}  "
                 + "  ".join(f"{TP_SHORT[m]}: {result['tp_errors'][m]:.4f}" for m in TP_METRICS))
    return "\n".join(lines)


def _get(sample, key, default=None, required=True):
    """A field of a data sample (a dict or an mmengine data element), as numpy where it is a tensor."""
    if isinstance(sample, Mapping):
        val = sample.get(key, default)
    else:
        val = getattr(sample, key, default)
    if val is None and required:
        raise ValueError(f"NuScenesMetric: data sample lacks {key!r}")
    if hasattr(val, "detach"):
        val = val.detach().cpu().numpy()
    return val


@METRICS.register_module()
class NuScenesMetric(BaseMetric):
    """mmengine metric: official nuScenes detection metrics over a validation run.

    Each data sample (dict or data element) given to ``process`` carries:
    ``sample_token`` str; ``lidar2ego``, ``ego2global`` (4, 4) float; ``pred_boxes`` (K, 9) float
    [x, y, z, dx, dy, dz, heading, vx, vy] LiDAR frame; ``pred_scores`` (K,); ``pred_labels`` (K,) int
    index into ``class_names``; ``gt_boxes`` (M, 9) same layout (velocity NaN where unknown; (M, 7)
    = all unknown); ``gt_labels`` (M,) int; optional ``gt_num_points`` (M,) int LiDAR+radar points
    (0 drops the box),
    ``gt_attributes`` (M,) names ('' none), ``pred_attributes`` (K,) names (default: from class and
    speed), ``bike_racks`` {translation, size, rotation} global.

    Args:
        class_names: the model's label order, nuScenes detection names.
        jsonfile_prefix: if set, predictions are also written to ``<prefix>/results_nusc.json``.
        config: overrides of ``NuScenesEvalConfig`` fields, e.g. ``dict(max_boxes_per_sample=500)``.
            Each sample keeps its ``max_boxes_per_sample`` highest-scoring predictions.
    """

    default_prefix = "nuscenes"

    def __init__(self, class_names: Sequence[str] = DETECTION_NAMES, jsonfile_prefix: str | None = None,
                 config: Mapping | None = None, collect_device: str = "cpu", prefix: str | None = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.class_names = tuple(class_names)
        unknown = [n for n in self.class_names if n not in DETECTION_NAMES]
        if unknown:
            raise ValueError(f"class_names has names that are not nuScenes detection names: {unknown}")
        self.cfg = NuScenesEvalConfig(**dict(config or {}))
        self.jsonfile_prefix = jsonfile_prefix

    def process(self, data_batch, data_samples: Sequence) -> None:
        for ds in data_samples:
            token = str(_get(ds, "sample_token"))
            l2g = np.asarray(_get(ds, "ego2global"), dtype=np.float64) @ np.asarray(_get(ds, "lidar2ego"),
                                                                                   dtype=np.float64)
            pred = lidar_detections_to_fields(
                _get(ds, "pred_boxes"), _get(ds, "pred_scores"), _get(ds, "pred_labels"), l2g, self.class_names,
                attributes=_get(ds, "pred_attributes", required=False), max_boxes=self.cfg.max_boxes_per_sample)
            gt_boxes = np.asarray(_get(ds, "gt_boxes"), dtype=np.float64)
            gt_boxes = gt_boxes.reshape(0, 9) if gt_boxes.size == 0 else gt_boxes
            if gt_boxes.ndim == 2 and gt_boxes.shape[1] == 7:  # no velocity given: unknown, not 0
                gt_boxes = np.concatenate([gt_boxes, np.full((len(gt_boxes), 2), np.nan)], axis=1)
            gt_labels = np.asarray(_get(ds, "gt_labels")).reshape(-1).astype(np.int64)
            if len(gt_labels) != len(gt_boxes) or ((gt_labels < 0) | (gt_labels >= len(self.class_names))).any():
                raise ValueError(f"sample {token!r}: gt_labels must be {len(gt_boxes)} indices in "
                                 f"[0, {len(self.class_names)}), got {gt_labels.tolist()}")
            gt = lidar_detections_to_fields(gt_boxes, np.zeros(len(gt_boxes)), gt_labels, l2g, self.class_names,
                                            attributes=["" for _ in gt_labels])
            # lidar_detections_to_fields sorts by score; all GT scores are equal, and the sort is stable.
            gt.pop("detection_score")
            attrs = _get(ds, "gt_attributes", required=False)
            if attrs is not None:
                gt["attribute_name"] = [str(a) for a in attrs]
            num_pts = _get(ds, "gt_num_points", required=False)
            if num_pts is not None:
                gt["num_pts"] = np.asarray(num_pts, dtype=np.int64).reshape(-1)
            racks = _get(ds, "bike_racks", required=False)
            self.results.append(dict(token=token, gt=gt, pred=pred, ego=_ego_origin(ds), racks=racks))

    def compute_metrics(self, results: list) -> dict:
        gt = {r["token"]: r["gt"] for r in results}
        pred = {r["token"]: r["pred"] for r in results}
        ego = {r["token"]: r["ego"] for r in results}
        racks = {r["token"]: r["racks"] for r in results if r["racks"] is not None}
        res = nuscenes_detection_metrics(gt, pred, ego, racks or None, self.cfg)
        MMLogger.get_current_instance().info("nuScenes detection\n" + format_nuscenes_table(res))
        if self.jsonfile_prefix:
            write_submission(f"{self.jsonfile_prefix}/results_nusc.json", pred,
                             max_boxes_per_sample=self.cfg.max_boxes_per_sample)
        out = {"mAP": res["mAP"], "NDS": res["NDS"]}
        out.update({TP_SHORT[m]: v for m, v in res["tp_errors"].items()})
        for n in DETECTION_NAMES:
            out[f"{n}_AP"] = res["mean_dist_aps"][n]
            out.update({f"{n}_AP_dist_{t:g}": v for t, v in res["label_aps"][n].items()})
            out.update({f"{n}_{m}": v for m, v in res["label_tp_errors"][n].items()})
        return out


def _ego_origin(sample) -> np.ndarray:
    """Global ego position of a sample: the translation of its ego2global pose."""
    return np.asarray(_get(sample, "ego2global"), dtype=np.float64)[:3, 3]
