"""How sure is an AP? Frame bootstrap of the Waymo AP/APH, alone and paired between runs.

A held-out set of a few dozen frames moves a detector's Vehicle AP by a few points from the frames drawn
alone, which is as much as two backbones differ by. Resampling the frames with replacement (the frames are
the independent units: the official matching never crosses frames) gives an interval for one run's AP and,
with the same resampled frames for two runs, for their difference.

On driving logs, frames of one sequence are correlated: resample whole sequences there (``groups``; the
tool's ``--by-sequence``), or the intervals come out too narrow. The simulator's frames are independent scenes.

The matching is done once per frame (``frame_measurements``); a resample is then a weighted sum of the
per-frame counts, so 1000 resamples cost about as much as one evaluation. With every weight 1 the sums are
the full evaluation's counts, so the point estimate equals ``waymo_detection_metrics``.

Training seeds move an AP too: ``compare_models`` takes several runs per model, compares the means and adds
an interval that also redraws the runs (two-level bootstrap).
"""
from typing import Dict, List, Optional, Sequence

import numpy as np

from pc3d.evaluation.ap import average_precision, precision_recall
from pc3d.evaluation.waymo import (CLASS_NAMES, DEFAULT_IOU_THRESHOLDS, LABEL_TO_TYPE, IoUFn, check_score_cutoffs,
                                   class_measurements, default_iou_fn, level_counts, prepare_frames,
                                   waymo_inputs_from_frames)

_CURVES = ("tp", "tp_l1", "sum_ha", "num_pred")


def _take(cols: Dict[str, np.ndarray], idx: np.ndarray) -> Dict[str, np.ndarray]:
    return {k: v[idx] for k, v in cols.items()}


def frame_measurements(frames: Sequence[dict], iou_fn: Optional[IoUFn] = None,
                       iou_thresholds: Optional[Dict[int, float]] = None,
                       score_cutoffs: Optional[Sequence[float]] = None) -> Dict[str, Dict[str, np.ndarray]]:
    """Each frame's matched counts per class.

    Args:
        frames: F per-frame dicts as stored by ``WaymoMetric.process`` (or ``load_detections``).
        iou_fn, iou_thresholds, score_cutoffs: as in ``waymo_detection_metrics``.

    Returns:
        ``{class name: {"tp", "tp_l1", "sum_ha", "num_pred": (F, C) float64, "num_gt", "num_gt_l1": (F,)}}``
        for the classes of ``CLASS_NAMES``; summing over frames gives the whole set's counts.
    """
    iou_fn = default_iou_fn if iou_fn is None else iou_fn
    thresholds = {**DEFAULT_IOU_THRESHOLDS, **(iou_thresholds or {})}
    cutoffs = check_score_cutoffs(score_cutoffs)
    gt, pred = waymo_inputs_from_frames(frames)
    g, p = prepare_frames(gt, pred)
    # waymo_inputs_from_frames numbers frames 0..F-1 by position; frames without boxes simply have no rows.
    num_frames, num_cut = len(frames), len(cutoffs)
    g_order, p_order = np.argsort(g["frame_id"], kind="stable"), np.argsort(p["frame_id"], kind="stable")
    g_bounds = np.searchsorted(g["frame_id"][g_order], np.arange(num_frames + 1))
    p_bounds = np.searchsorted(p["frame_id"][p_order], np.arange(num_frames + 1))
    out = {name: {**{k: np.zeros((num_frames, num_cut)) for k in _CURVES},
                  "num_gt": np.zeros(num_frames), "num_gt_l1": np.zeros(num_frames)} for name in CLASS_NAMES}
    for f in range(num_frames):
        gf = _take(g, g_order[g_bounds[f]:g_bounds[f + 1]])
        pf = _take(p, p_order[p_bounds[f]:p_bounds[f + 1]])
        for name, wtype in zip(CLASS_NAMES, LABEL_TO_TYPE):
            if not (gf["type"] == wtype).any() and not (pf["type"] == wtype).any():
                continue
            m = class_measurements(gf, pf, int(wtype), thresholds[int(wtype)], cutoffs, iou_fn)
            for k in (*_CURVES, "num_gt", "num_gt_l1"):
                out[name][k][f] = m[k]
    return out


def resample_weights(num_frames: int, num_samples: int, seed: int = 0,
                     groups: Optional[Sequence] = None) -> np.ndarray:
    """``(num_samples, num_frames) int64``: how often each frame is drawn in each bootstrap resample.

    ``groups`` (one key per frame, e.g. the Waymo segment) resamples whole groups instead of frames: frames of one
    driving sequence are correlated, and resampling them one by one would make the intervals too narrow.
    """
    if num_frames < 1 or num_samples < 1:
        raise ValueError(f"need >= 1 frame and >= 1 sample, got {num_frames} frames, {num_samples} samples")
    rng = np.random.default_rng(seed)
    if groups is None:
        return rng.multinomial(num_frames, np.full(num_frames, 1.0 / num_frames), size=num_samples)
    groups = np.asarray(groups)
    if groups.shape != (num_frames,):
        raise ValueError(f"groups must hold one key per frame ({num_frames}), got shape {groups.shape}")
    _, group_of_frame = np.unique(groups, return_inverse=True)
    num_groups = int(group_of_frame.max()) + 1
    drawn = rng.multinomial(num_groups, np.full(num_groups, 1.0 / num_groups), size=num_samples)
    return drawn[:, group_of_frame]


def weighted_ap(measurements: Dict[str, Dict[str, np.ndarray]], weights: np.ndarray, level: int = 1,
                recall_delta: float = 0.05) -> Dict[str, np.ndarray]:
    """AP and APH of every resample: ``weights (B, F)`` frame multiplicities -> ``{"Vehicle/AP": (B,), ...}``.

    ``weights = np.ones((1, F))`` gives the plain evaluation's values.
    """
    weights = np.asarray(weights, np.float64)
    out = {}
    for name, m in measurements.items():
        if weights.ndim != 2 or weights.shape[1] != len(m["num_gt"]):
            raise ValueError(f"weights must be (B, {len(m['num_gt'])}) frame multiplicities, got {weights.shape}")
        summed = {k: weights @ m[k] for k in (*_CURVES, "num_gt", "num_gt_l1")}
        tp, fp, fn, sum_ha = level_counts(summed, level)
        ap, aph = np.zeros(len(weights)), np.zeros(len(weights))
        for b in range(len(weights)):
            prec, prec_ha, rec = precision_recall(tp[b], fp[b], fn[b], sum_ha[b])
            ap[b] = average_precision(prec, rec, recall_delta)
            aph[b] = average_precision(prec_ha, rec, recall_delta)
        out[f"{name}/AP"], out[f"{name}/APH"] = ap, aph
    return out


def _interval(samples: np.ndarray, confidence: float) -> List[float]:
    lo = (1.0 - confidence) / 2.0
    return [float(np.quantile(samples, lo)), float(np.quantile(samples, 1.0 - lo))]


def compare_runs(runs: Dict[str, Sequence[dict]], num_samples: int = 1000, seed: int = 0, level: int = 1,
                 confidence: float = 0.95, iou_fn: Optional[IoUFn] = None,
                 groups: Optional[Sequence] = None) -> Dict[str, dict]:
    """Bootstrap summary of several runs evaluated on the same frames: ``compare_models`` with one run each.

    Args:
        runs: run name -> per-frame dicts (``load_detections``); every run must hold the same frames (same
            ``frame_id`` order and ground truth), or the pairing would compare different scenes.
        num_samples: bootstrap resamples B (the same resampled frames for every run).
        groups: one key per frame to resample whole sequences (``resample_weights``); None: frames.

    Returns:
        as ``compare_models``; with one run per name ``interval_seeds`` equals ``interval``.
    """
    return compare_models({name: [frames] for name, frames in runs.items()}, num_samples=num_samples, seed=seed,
                          level=level, confidence=confidence, iou_fn=iou_fn, groups=groups)


def compare_models(models: Dict[str, Sequence[Sequence[dict]]], num_samples: int = 1000, seed: int = 0,
                   level: int = 1, confidence: float = 0.95, iou_fn: Optional[IoUFn] = None,
                   groups: Optional[Sequence] = None) -> Dict[str, dict]:
    """Bootstrap summary of models, each trained once or several times (seeds), evaluated on the same frames.

    A model's value is the mean of its runs' values. Two seeds of one detector can differ by more than the
    frames' noise, so there are two intervals: ``interval`` resamples the frames only (the same resampled frames
    for every run, so differences are paired); ``interval_seeds`` also redraws each model's runs with
    replacement in every resample (a two-level bootstrap), which widens it by the seed-to-seed spread. With a
    few seeds the second is itself rough (n runs give n**n draws, and it misses the spread of seeds not run).

    Args:
        models: model name -> its runs, each run a list of per-frame dicts (``load_detections``). Every run of
            every model must hold the same frames (same ``frame_id`` order and ground truth).
        num_samples: bootstrap resamples B.
        groups: one key per frame to resample whole sequences (``resample_weights``); None: frames.

    Returns:
        ``{"runs": {name: {metric: {"value", "mean", "std", "interval", "interval_seeds", "per_run"}}},
        "differences": {name: {metric: {"value", "interval", "p_at_least", "interval_seeds",
        "p_at_least_seeds"}}}, "num_runs": {name: n}, ...}``: ``value`` is the mean over the model's runs,
        ``per_run`` each run's value, differences are each model minus the first model, and ``p_at_least`` the
        share of resamples in which the model's value is >= the first model's.
    """
    if not models:
        raise ValueError("compare_models needs at least one model")
    names = list(models)
    for name in names:
        if isinstance(models[name], dict) or len(models[name]) == 0 or isinstance(models[name][0], dict):
            raise ValueError(f"model '{name}' must be a non-empty list of runs (each a list of frames)")
    def label(name, i):
        return name if len(models[name]) == 1 else f"{name}[{i}]"

    ref = models[names[0]][0]
    for name in names:
        for i, frames in enumerate(models[name]):
            _check_same_frames(label(names[0], 0), ref, label(name, i), frames)
    weights = resample_weights(len(ref), num_samples, seed, groups)
    # A separate generator for the runs, so the frame resamples (and the frames-only intervals) are the same
    # whatever the number of runs.
    run_rng = np.random.default_rng([seed, 1])
    ones = np.ones((1, len(ref)))
    result = {"runs": {}, "differences": {}, "num_frames": len(ref), "num_samples": num_samples, "level": level,
              "confidence": confidence, "num_runs": {name: len(models[name]) for name in names}}
    samples, seed_samples = {}, {}
    for name in names:
        full, boot = [], []
        for frames in models[name]:
            m = frame_measurements(frames, iou_fn=iou_fn)
            full.append(weighted_ap(m, ones, level))
            boot.append(weighted_ap(m, weights, level))
        drawn = run_rng.integers(0, len(boot), (num_samples, len(boot)))  # (B, n) run indices per resample
        samples[name] = {k: np.mean([b[k] for b in boot], axis=0) for k in boot[0]}
        seed_samples[name] = {k: np.stack([b[k] for b in boot], 1)[np.arange(num_samples)[:, None], drawn].mean(1)
                              for k in boot[0]}
        result["runs"][name] = {k: {"value": float(np.mean([f[k][0] for f in full])),
                                    "mean": float(samples[name][k].mean()),
                                    "std": float(samples[name][k].std(ddof=1)) if num_samples > 1 else 0.0,
                                    "interval": _interval(samples[name][k], confidence),
                                    "interval_seeds": _interval(seed_samples[name][k], confidence),
                                    "per_run": [float(f[k][0]) for f in full]} for k in boot[0]}
    for name in names[1:]:
        result["differences"][name] = {}
        for k, s in samples[name].items():
            d, ds = s - samples[names[0]][k], seed_samples[name][k] - seed_samples[names[0]][k]
            result["differences"][name][k] = {
                "value": result["runs"][name][k]["value"] - result["runs"][names[0]][k]["value"],
                "interval": _interval(d, confidence), "p_at_least": float(np.mean(d >= 0)),
                "interval_seeds": _interval(ds, confidence), "p_at_least_seeds": float(np.mean(ds >= 0))}
    return result


def _check_same_frames(name_a, frames_a, name_b, frames_b) -> None:
    if len(frames_a) != len(frames_b):
        raise ValueError(f"runs '{name_a}' and '{name_b}' hold {len(frames_a)} and {len(frames_b)} frames; "
                         "a paired comparison needs the same frames")
    for fa, fb in zip(frames_a, frames_b):
        if str(fa["frame_id"]) != str(fb["frame_id"]):
            raise ValueError(f"runs '{name_a}' and '{name_b}' differ in frame order: '{fa['frame_id']}' against "
                             f"'{fb['frame_id']}'")
        if not np.array_equal(fa["gt_labels"], fb["gt_labels"]):  # False on different lengths too
            raise ValueError(f"frame '{fa['frame_id']}' has different ground truth in runs '{name_a}' and "
                             f"'{name_b}'")
