"""Bootstrap interval of the ScanNet detection mAP over scenes (rooms).

Whether a prediction is a true positive depends only on its own scene (the GT it matches and the
higher-ranked predictions of its class in that scene), so the TP flags are computed once per scene
(``scene_flags``). A resample (``bootstrap.resample_weights``: scenes drawn with replacement) then only
re-ranks: a scene drawn k times counts each of its predictions and GT boxes k times (as k adjacent copies of
each prediction in the ranking), and the per-class VOC AP is taken over the weighted cumulative counts
(``weighted_map``); with every weight 1 this is exactly ``scannet_detection_metrics``. A resample that holds
no GT box of some class leaves that class out of its mean, as the plain evaluation does.

Command line, on the data samples ``tools/test.py`` dumped with mmengine's ``DumpResults`` evaluator::

    python -m pc3d.evaluation.scannet_bootstrap work_dirs/tr3d_simrooms/test_detections.pkl
"""
import argparse
from typing import Dict, Sequence

import numpy as np

from .bootstrap import resample_weights
from .scannet import SCANNET_DET_CLASSES, axis_aligned_iou_3d, scannet_detection_metrics, voc_average_precision

KEYS = ("gt_boxes", "gt_labels", "pred_boxes", "pred_labels", "pred_scores")


def _numpy(value):
    return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)


def scene_flags(scenes: Sequence[Dict], iou_thresholds: Sequence[float] = (0.25, 0.5),
                num_classes: int = len(SCANNET_DET_CLASSES)) -> Dict[str, np.ndarray]:
    """Per prediction of every scene: scene index, class, score and TP flag per threshold (the metric's rules:
    within a class, by descending score, a prediction takes its best same-class GT when the IoU is > the
    threshold and that GT is still free).

    Returns:
        dict ``scene`` (P,), ``cls`` (P,), ``score`` (P,), ``tp`` (T, P) bool, ``num_gt`` (S, num_classes),
        ``order``: per class the indices of its predictions by descending score (ties: scene, then box).
    """
    out = {k: [] for k in ("scene", "cls", "score", "tp")}
    num_gt = np.zeros((len(scenes), num_classes))
    for i, s in enumerate(scenes):
        gb = np.asarray(_numpy(s["gt_boxes"]), np.float64).reshape(-1, np.shape(s["gt_boxes"])[-1] or 6)
        gl = _numpy(s["gt_labels"]).reshape(-1).astype(np.int64)
        pb = np.asarray(_numpy(s["pred_boxes"]), np.float64).reshape(-1, np.shape(s["pred_boxes"])[-1] or 6)
        pl = _numpy(s["pred_labels"]).reshape(-1).astype(np.int64)
        ps = _numpy(s["pred_scores"]).reshape(-1).astype(np.float64)
        num_gt[i] = np.bincount(gl, minlength=num_classes)[:num_classes]
        tp = np.zeros((len(iou_thresholds), len(pl)), bool)
        if len(pl) and len(gl):
            iou = np.where(pl[:, None] == gl[None, :], axis_aligned_iou_3d(pb, gb), -np.inf)
            best = np.argmax(iou, axis=1)
            best_iou = iou[np.arange(len(pl)), best]
            order = np.lexsort((np.arange(len(pl)), -ps))  # by score, ties: earlier box first
            for j, t in enumerate(iou_thresholds):
                taken = np.zeros(len(gl), bool)
                for p in order:
                    if best_iou[p] > t and not taken[best[p]]:
                        taken[best[p]] = True
                        tp[j, p] = True
        out["scene"].append(np.full(len(pl), i))
        out["cls"].append(pl)
        out["score"].append(ps)
        out["tp"].append(tp)
    res = {k: np.concatenate(v, axis=-1) if v else np.zeros(0) for k, v in out.items()}
    res["num_gt"] = num_gt
    # each class's predictions in the metric's global order (score, then scene, then box), sorted once
    res["order"] = []
    for c in range(num_classes):
        sel = np.flatnonzero(res["cls"] == c)
        res["order"].append(sel[np.argsort(-res["score"][sel], kind="stable")])
    return res


def weighted_map(flags: Dict[str, np.ndarray], weights: np.ndarray) -> np.ndarray:
    """mAP per threshold of one resample: ``weights (S,)`` scene multiplicities -> (T,) (NaN without GT)."""
    weights = np.asarray(weights, np.float64)
    num_classes = flags["num_gt"].shape[1]
    n_thr = flags["tp"].shape[0]
    ngt = weights @ flags["num_gt"]  # (C,)
    aps = np.full((n_thr, num_classes), np.nan)
    for c in range(num_classes):
        if ngt[c] == 0:
            continue
        sel = flags["order"][c]
        w = weights[flags["scene"][sel]]
        sel, w = sel[w > 0], w[w > 0]
        if len(sel) == 0:
            aps[:, c] = 0.0
            continue
        count = np.cumsum(w)
        for j in range(n_thr):
            tp = np.cumsum(w * flags["tp"][j, sel])
            aps[j, c] = voc_average_precision(tp / ngt[c], tp / count)
    with np.errstate(all="ignore"):
        return np.array([np.nanmean(a) if np.isfinite(a).any() else np.nan for a in aps])


def scannet_map_bootstrap(scenes: Sequence[Dict], num_samples: int = 1000, seed: int = 0, confidence: float = 0.95,
                          iou_thresholds: Sequence[float] = (0.25, 0.5)) -> Dict[float, Dict[str, object]]:
    """mAP per IoU threshold with a percentile bootstrap interval over scenes.

    Args:
        scenes: one dict per scene with ``gt_boxes (M, 6|7)``, ``gt_labels (M,)``, ``pred_boxes (K, 6|7)``,
            ``pred_labels (K,)``, ``pred_scores (K,)`` (arrays or tensors; ``ScanNetDetMetric``'s fields).
        num_samples: resamples. confidence: central mass of the interval.
    Returns:
        ``{threshold: {"mAP": full-set value, "interval": [lo, hi], "samples": (num_samples,) array}}``.
    """
    if not scenes:
        raise ValueError("scannet_map_bootstrap needs at least one scene")
    cols = {}
    for k in KEYS:
        try:
            cols[k] = [_numpy(s[k]) for s in scenes]
        except KeyError:
            raise ValueError(f"every scene needs {KEYS}; a scene lacks {k!r}") from None
    full = scannet_detection_metrics(*(cols[k] for k in KEYS), iou_thresholds=iou_thresholds)
    flags = scene_flags([dict(zip(KEYS, v)) for v in zip(*(cols[k] for k in KEYS))], iou_thresholds)
    weights = resample_weights(len(scenes), num_samples, seed)
    samples = np.stack([weighted_map(flags, w) for w in weights])
    tail = (1 - confidence) / 2 * 100
    out = {}
    for j, t in enumerate(iou_thresholds):
        s = samples[:, j][np.isfinite(samples[:, j])]
        out[float(t)] = {"mAP": full["mAP"][float(t)], "interval": np.percentile(s, [tail, 100 - tail]).tolist(),
                         "samples": samples[:, j]}
    return out


def main(argv=None):
    import pickle

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("detections", help="pickle of per-scene data samples (mmengine DumpResults)")
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--confidence", type=float, default=0.95)
    args = p.parse_args(argv)
    with open(args.detections, "rb") as f:
        scenes = pickle.load(f)  # a file this pipeline wrote itself (tools/test.py's DumpResults)
    res = scannet_map_bootstrap(scenes, args.samples, args.seed, args.confidence)
    for t, r in res.items():
        lo, hi = r["interval"]
        print(f"mAP@{t:g}: {r['mAP']:.4f}  {args.confidence:.0%} interval over {len(scenes)} scenes "
              f"[{lo:.4f}, {hi:.4f}] ({args.samples} resamples)")


if __name__ == "__main__":
    main()
