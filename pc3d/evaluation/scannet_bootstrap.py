"""Bootstrap interval of the ScanNet detection mAP over scenes (rooms).

Scenes are independent units of the ScanNet evaluation only approximately (the per-class ranking pools
all scenes), so each resample re-runs the whole evaluation (``scannet_detection_metrics``) on the scenes
drawn with replacement (``bootstrap.resample_weights``); a scene drawn k times enters k times. A resample
that holds no GT box of some class leaves that class out of its mean, as the plain evaluation does.

Command line, on the data samples ``tools/test.py`` dumped with mmengine's ``DumpResults`` evaluator::

    python -m pc3d.evaluation.scannet_bootstrap work_dirs/tr3d_simrooms/test_detections.pkl
"""
import argparse
from typing import Dict, Sequence

import numpy as np

from .bootstrap import resample_weights
from .scannet import scannet_detection_metrics

KEYS = ("gt_boxes", "gt_labels", "pred_boxes", "pred_labels", "pred_scores")


def _numpy(value):
    return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)


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
    weights = resample_weights(len(scenes), num_samples, seed)
    samples = np.zeros((num_samples, len(iou_thresholds)))
    for b, w in enumerate(weights):
        idx = np.repeat(np.arange(len(scenes)), w)
        res = scannet_detection_metrics(*([cols[k][i] for i in idx] for k in KEYS), iou_thresholds=iou_thresholds)
        samples[b] = [res["mAP"][float(t)] for t in iou_thresholds]
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
