"""Waymo detection metric speed: component matching vs a full Hungarian per frame, class and cut-off.

Synthetic detector output on frames of 100 ground-truth boxes (60 vehicles, 25 pedestrians,
15 cyclists scattered over 150 m x 150 m): 85% found with centre/size/heading noise, 10% of those
duplicated at a lower score, and random false positives, about 100 predictions per frame.
"""
from typing import Dict, Tuple

import numpy as np

from pc3d.benchmark.harness import Case

SUITE = "metrics"
_SIZES = {1: (4.5, 1.9, 1.6), 2: (0.8, 0.8, 1.8), 4: (1.8, 0.6, 1.7)}


def synthetic_frames(num_frames: int, boxes_per_frame: int = 100, seed: int = 0) -> Tuple[Dict, Dict]:
    """Golden-layout ``(gt, pred)`` dicts of arrays (see ``pc3d.evaluation.waymo``)."""
    rng = np.random.default_rng(seed)
    n = num_frames * boxes_per_frame
    types = rng.choice([1, 2, 4], n, p=[0.6, 0.25, 0.15])
    size = np.array([_SIZES[t] for t in types]) * rng.uniform(0.85, 1.15, (n, 3))
    centre = np.c_[rng.uniform(-75, 75, (n, 2)), size[:, 2] / 2]
    gt_box = np.c_[centre, size, rng.uniform(-np.pi, np.pi, n)].astype(np.float32)
    frame = np.repeat(np.arange(num_frames), boxes_per_frame)
    num_points = rng.integers(1, 400, n)
    gt = {"frame_id": frame, "type": types, "bbox": gt_box, "num_points": num_points,
          "difficulty": np.where(num_points <= 5, 2, 1)}
    found = np.flatnonzero(rng.random(n) < 0.85)
    dup = found[rng.random(len(found)) < 0.1]
    src = np.r_[found, dup]
    pbox = gt_box[src].astype(np.float64)
    pbox[:, :3] += rng.normal(0, 0.04, (len(src), 3)) * pbox[:, 3:6]
    pbox[:, 3:6] *= rng.normal(1, 0.03, (len(src), 3))
    pbox[:, 6] += rng.normal(0, 0.06, len(src)) + np.pi * (rng.random(len(src)) < 0.1)
    score = np.r_[rng.uniform(0.3, 1.0, len(found)), rng.uniform(0.0, 0.6, len(dup))]
    n_fp = int(0.17 * n)
    fp_types = rng.choice([1, 2, 4], n_fp)
    fp_box = np.c_[rng.uniform(-75, 75, (n_fp, 2)), np.ones(n_fp), [_SIZES[t] for t in fp_types],
                   rng.uniform(-np.pi, np.pi, n_fp)]
    pred = {"frame_id": np.r_[frame[src], rng.integers(0, num_frames, n_fp)],
            "type": np.r_[types[src], fp_types], "bbox": np.r_[pbox, fp_box].astype(np.float32),
            "score": np.r_[score, rng.uniform(0.0, 0.7, n_fp)].astype(np.float32)}
    return gt, pred


def naive_waymo_metrics(gt: Dict, pred: Dict) -> Dict[str, Dict[str, float]]:
    """The official algorithm written plainly: a full Hungarian matching per frame, class and cut-off."""
    from pc3d.evaluation import waymo as W
    from pc3d.evaluation.ap import average_precision, precision_recall
    from pc3d.evaluation.matching import cutoff_measurements_naive, presence_levels

    g, p = W.prepare_gt(gt), W.prepare_pred(pred)
    cutoffs = W.DEFAULT_SCORE_CUTOFFS
    results = {}
    for wtype, name in W.WAYMO_TYPES.items():
        gi, pi = np.flatnonzero(g["type"] == wtype), np.flatnonzero(p["type"] == wtype)
        frames = []
        for f in np.union1d(g["frame_id"][gi], p["frame_id"][pi]):
            fp_, fg = np.flatnonzero(p["frame_id"][pi] == f), np.flatnonzero(g["frame_id"][gi] == f)
            frames.append((fp_, fg, W.default_iou_fn(p["bbox"][pi][fp_], g["bbox"][gi][fg])))
        m = cutoff_measurements_naive(frames, presence_levels(p["score"][pi], cutoffs), p["bbox"][pi, 6],
                                      g["bbox"][gi, 6], g["level"][gi], W.DEFAULT_IOU_THRESHOLDS[wtype], len(cutoffs))
        for level in (1, 2):
            n_gt = np.count_nonzero(g["level"][gi] <= level)
            fn = n_gt - (m["tp_l1"] if level == 1 else m["tp"])
            prec, prec_ha, rec = precision_recall(m["tp"], m["num_pred"] - m["tp"], fn, m["sum_ha"])
            results[f"OBJECT_TYPE_TYPE_{name}_LEVEL_{level}"] = {
                "AP": average_precision(prec, rec), "APH": average_precision(prec_ha, rec)}
    return results


def _check(a, b) -> None:
    for key, v in b.items():
        for m in ("AP", "APH"):
            if abs(a[key][m] - v[m]) > 1e-6:
                raise AssertionError(f"{key} {m}: fast {a[key][m]} != naive {v[m]}")


def cases():
    from pc3d.evaluation import waymo_detection_metrics

    gt, pred = synthetic_frames(1000)
    yield Case(SUITE, "waymo AP/APH 1000 frames x 100 boxes", "components+running argmax",
               lambda: waymo_detection_metrics(gt, pred), repeats=3, warmup=1,
               extra={"frames": 1000, "gt_boxes": len(gt["bbox"]), "pred_boxes": len(pred["bbox"])})
    gt_s, pred_s = synthetic_frames(50, seed=1)
    yield Case(SUITE, "waymo AP/APH 50 frames x 100 boxes", "components+running argmax",
               lambda: waymo_detection_metrics(gt_s, pred_s), "hungarian per cut-off",
               lambda: naive_waymo_metrics(gt_s, pred_s), check=_check, repeats=2, warmup=0,
               extra={"frames": 50, "gt_boxes": len(gt_s["bbox"]), "pred_boxes": len(pred_s["bbox"])})
