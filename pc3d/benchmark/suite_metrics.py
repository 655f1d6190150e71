"""Waymo detection metric speed: component matching vs a full Hungarian per frame, class and cut-off, and the
whole metric at the size of Waymo's validation set.

``synthetic_frames``: frames of 100 ground-truth boxes (60 vehicles, 25 pedestrians, 15 cyclists scattered
uniformly over 150 m x 150 m): 85% found with centre/size/heading noise, 10% of those duplicated at a lower score,
and random false positives, about 100 predictions per frame.

``road_frames``: shaped like a real detector's output on Waymo: per frame about 60 ground truths clustered along
a road (vehicles in four lanes and parked at the kerbs, cyclists at the lane edges, pedestrians on the sidewalks,
the road at a random angle and offset), and up to 500 predictions as a CenterPoint head emits them at score
threshold 0: each found object's box (10% missed) with centre/size/heading noise and 5% of headings flipped,
1-2 near-duplicates at lower scores, and low-score boxes spread over the road area.
"""
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from pc3d.benchmark.harness import Case

SUITE = "metrics"
# Frames of the full-size case (Waymo's validation set has about 40k frames) and of the subset timed against the
# official package.
FULL_FRAMES = int(os.environ.get("PC3D_BENCH_METRIC_FRAMES", 40000))
OFFICIAL_FRAMES = int(os.environ.get("PC3D_BENCH_OFFICIAL_FRAMES", 500))
# A Python with waymo-open-dataset-tf-2-12-0 installed (its own venv; never a pc3d dependency).
OFFICIAL_PYTHON_ENV = "PC3D_WAYMO_OFFICIAL_PYTHON"
WORKER = Path(__file__).resolve().parents[2] / "tools" / "waymo_official_worker.py"
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


def road_frames(num_frames: int, seed: int = 0, max_preds: int = 500) -> Tuple[Dict, Dict]:
    """Golden-layout ``(gt, pred)`` of ``num_frames`` road scenes (module docstring); vectorised over frames."""
    rng = np.random.default_rng(seed)
    counts = {1: 35, 2: 18, 4: 7}  # vehicles, pedestrians, cyclists per frame (+-20%)
    per_type = {t: rng.integers(int(c * 0.8), int(c * 1.2) + 1, num_frames) for t, c in counts.items()}
    frames, types, lateral, along, heading = [], [], [], [], []
    for t, n in per_type.items():
        total = int(n.sum())
        frames.append(np.repeat(np.arange(num_frames), n))
        types.append(np.full(total, t))
        if t == 1:  # four lanes 3.5 m wide (two each way) and parked cars at the kerbs
            lane = rng.choice([-5.25, -1.75, 1.75, 5.25, -8.5, 8.5], total, p=[0.2, 0.2, 0.2, 0.2, 0.1, 0.1])
            off = lane + rng.normal(0, 0.3, total)
            head = np.where(lane > 0, 0.0, np.pi) + rng.normal(0, 0.05, total)
        elif t == 4:  # lane edges
            off = rng.choice([-7.2, 7.2], total) + rng.normal(0, 0.3, total)
            head = np.where(off > 0, 0.0, np.pi) + rng.normal(0, 0.1, total)
        else:  # sidewalks, any heading
            off = rng.choice([-1.0, 1.0], total) * rng.uniform(10.0, 13.0, total)
            head = rng.uniform(-np.pi, np.pi, total)
        lateral.append(off)
        along.append(rng.uniform(-75, 75, total))
        heading.append(head)
    frame, wtype = np.concatenate(frames), np.concatenate(types)
    order = np.argsort(frame, kind="stable")
    frame, wtype = frame[order], wtype[order]
    lat, alo, head = (np.concatenate(a)[order] for a in (lateral, along, heading))
    road_theta = rng.uniform(-np.pi, np.pi, num_frames)  # each road's direction in the sensor frame
    road_shift = rng.uniform(-15, 15, num_frames)  # and its offset from the sensor
    theta, shift = road_theta[frame], road_shift[frame]
    x = np.cos(theta) * alo - np.sin(theta) * (lat + shift)
    y = np.sin(theta) * alo + np.cos(theta) * (lat + shift)
    n = len(frame)
    size = np.array([_SIZES[t] for t in (1, 2, 4)])[np.searchsorted([1, 2, 4], wtype)] * rng.uniform(0.85, 1.15, (n, 3))
    yaw = np.mod(head + theta + np.pi, 2 * np.pi) - np.pi
    gt_box = np.c_[x, y, size[:, 2] / 2, size, yaw].astype(np.float32)
    num_points = np.maximum(1, (4000 / (1 + np.hypot(x, y)) ** 1.2 * rng.uniform(0.2, 1.5, n)).astype(np.int64))
    gt = {"frame_id": frame, "type": wtype, "bbox": gt_box, "num_points": num_points,
          "difficulty": np.where(num_points <= 5, 2, 1)}
    # Found objects (90%), their duplicates (1-2 each, lower scores), then background boxes up to max_preds.
    found = np.flatnonzero(rng.random(n) < 0.9)
    dups = np.repeat(found, rng.integers(1, 3, len(found)))
    src = np.r_[found, dups]
    pbox = gt_box[src].astype(np.float64)
    pbox[:, :2] += rng.normal(0, 0.1, (len(src), 2)) * np.r_[np.ones(len(found)), 3 * np.ones(len(dups))][:, None]
    pbox[:, 2] += rng.normal(0, 0.1, len(src))
    pbox[:, 3:6] *= rng.normal(1, 0.03, (len(src), 3))
    pbox[:, 6] += rng.normal(0, 0.05, len(src)) + np.pi * (rng.random(len(src)) < 0.05)
    score = np.r_[rng.beta(5, 1.5, len(found)), rng.beta(1.5, 5, len(dups))]
    obj_frame = frame[src]
    n_obj = np.bincount(obj_frame, minlength=num_frames)
    n_bg = np.maximum(0, np.minimum(max_preds, rng.integers(300, max_preds + 1, num_frames)) - n_obj)
    bg_frame = np.repeat(np.arange(num_frames), n_bg)
    m = len(bg_frame)
    bg_type = rng.choice([1, 2, 4], m, p=[0.5, 0.3, 0.2])
    bg_alo, bg_lat = rng.uniform(-75, 75, m), rng.uniform(-15, 15, m)
    bt, bs = road_theta[bg_frame], road_shift[bg_frame]
    bx = np.cos(bt) * bg_alo - np.sin(bt) * (bg_lat + bs)
    by = np.sin(bt) * bg_alo + np.cos(bt) * (bg_lat + bs)
    bsize = np.array([_SIZES[t] for t in (1, 2, 4)])[np.searchsorted([1, 2, 4], bg_type)]
    bg_box = np.c_[bx, by, bsize[:, 2] / 2, bsize, rng.uniform(-np.pi, np.pi, m)]
    pred_frame = np.r_[obj_frame, bg_frame]
    order = np.argsort(pred_frame, kind="stable")
    pred = {"frame_id": pred_frame[order], "type": np.r_[wtype[src], bg_type][order],
            "bbox": np.r_[pbox, bg_box].astype(np.float32)[order],
            "score": np.r_[score, rng.exponential(0.03, m).clip(0, 0.5)].astype(np.float32)[order]}
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


class OfficialWaymoWorker:
    """The official metric in a subprocess under ``$PC3D_WAYMO_OFFICIAL_PYTHON`` (``tools/waymo_official_worker.py``):
    started once with the data (TensorFlow's import is not timed), then each call computes the metric once."""

    def __init__(self, python: str, gt: Dict, pred: Dict):
        self._dir = tempfile.TemporaryDirectory()
        path = Path(self._dir.name) / "case.npz"
        arrays = {f"gt_{k}": np.asarray(v) for k, v in gt.items()}
        arrays.update({f"pred_{k}": np.asarray(v) for k, v in pred.items()})
        np.savez(path, **arrays)
        self.proc = subprocess.Popen([python, str(WORKER), str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"official Waymo worker under {python} did not start (got {line!r})")

    def __call__(self) -> Dict:
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())["metrics"]


def official_worker(gt: Dict, pred: Dict) -> Optional[OfficialWaymoWorker]:
    """The worker when ``$PC3D_WAYMO_OFFICIAL_PYTHON`` is set, else None."""
    python = os.environ.get(OFFICIAL_PYTHON_ENV)
    return OfficialWaymoWorker(python, gt, pred) if python else None


def _check_official(ours, official, tol: float = 1e-5) -> None:
    for key, v in official.items():
        for m in ("AP", "APH"):
            if abs(ours[key][m] - v[m]) > tol:
                raise AssertionError(f"{key} {m}: pc3d {ours[key][m]} != official {v[m]}")


def _peak_rss_mb() -> float:
    from pc3d.benchmark.harness import _status_kb

    return round(_status_kb("VmHWM") / 1024.0, 1)


def cases():
    from pc3d.evaluation import waymo_detection_metrics

    gt_o, pred_o = road_frames(OFFICIAL_FRAMES, seed=2)
    worker = official_worker(gt_o, pred_o)
    name = f"waymo AP/APH {OFFICIAL_FRAMES} road frames (~60 GT, <= 500 preds each)"
    extra = {"frames": OFFICIAL_FRAMES, "gt_boxes": len(gt_o["bbox"]), "pred_boxes": len(pred_o["bbox"])}
    if worker is None:
        extra["official"] = f"not run: set {OFFICIAL_PYTHON_ENV} to a Python with waymo-open-dataset-tf-2-12-0"
    yield Case(SUITE, name, "pc3d", lambda: waymo_detection_metrics(gt_o, pred_o),
               "waymo-open-dataset-tf-2-12-0" if worker else None, worker, check=_check_official if worker else None,
               repeats=1, warmup=0, extra=extra)
    gt_f, pred_f = road_frames(FULL_FRAMES, seed=3)
    full_extra = {"frames": FULL_FRAMES, "gt_boxes": len(gt_f["bbox"]), "pred_boxes": len(pred_f["bbox"]),
                  "goal": "< 120 s and < 8 GB peak on 2 cores"}

    def full_run():
        out = waymo_detection_metrics(gt_f, pred_f)
        full_extra["process_peak_rss_mb"] = _peak_rss_mb()  # the whole process, inputs included
        return out

    yield Case(SUITE, f"waymo AP/APH {FULL_FRAMES} road frames (validation-set size)", "pc3d", full_run,
               repeats=1, warmup=0, extra=full_extra)
    gt, pred = synthetic_frames(1000)
    yield Case(SUITE, "waymo AP/APH 1000 frames x 100 boxes", "components+running argmax",
               lambda: waymo_detection_metrics(gt, pred), repeats=3, warmup=1,
               extra={"frames": 1000, "gt_boxes": len(gt["bbox"]), "pred_boxes": len(pred["bbox"])})
    gt_s, pred_s = synthetic_frames(50, seed=1)
    yield Case(SUITE, "waymo AP/APH 50 frames x 100 boxes", "components+running argmax",
               lambda: waymo_detection_metrics(gt_s, pred_s), "hungarian per cut-off",
               lambda: naive_waymo_metrics(gt_s, pred_s), check=_check, repeats=2, warmup=0,
               extra={"frames": 50, "gt_boxes": len(gt_s["bbox"]), "pred_boxes": len(pred_s["bbox"])})
