"""AP / APH for a custom dataset's class list (``pc3d.datasets.custom``): the Waymo matching on rotated 3D IoU."""
from typing import Dict, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from pc3d.registry import METRICS


@METRICS.register_module()
class CustomMetric(BaseMetric):
    """Per-class 3D-IoU AP (and heading-weighted APH) for any class list, with the Waymo matching
    (Hungarian on rotated 3D IoU per frame and score cut-off, AP over 101 cut-offs); boxes without any
    point are not evaluated.

    Args:
        iou_threshold: the IoU a match needs (one float for every class, or ``{class name: IoU}``; classes
            not named use 0.5).
        classes: class names in label order (default: the dataset's ``metainfo['classes']``).

    Returns keys ``'<class>/AP'``, ``'<class>/APH'``, ``'mAP'``, ``'mAPH'``.
    """

    default_prefix: Optional[str] = None

    def __init__(self, iou_threshold=0.5, classes: Optional[Sequence[str]] = None, collect_device: str = "cpu",
                 prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.iou_threshold = iou_threshold
        self.classes = tuple(classes) if classes is not None else None

    def process(self, data_batch, data_samples: Sequence) -> None:
        from pc3d.evaluation.waymo import _get, _np

        for s in data_samples:
            self.results.append({k: _np(_get(s, k), dt).reshape(shape) for k, dt, shape in (
                ("pred_boxes", np.float32, (-1, 7)), ("pred_scores", np.float32, (-1,)),
                ("pred_labels", np.int64, (-1,)), ("gt_boxes", np.float32, (-1, 7)), ("gt_labels", np.int64, (-1,)),
                ("gt_num_points", np.int64, (-1,)))})

    def compute_metrics(self, results: list) -> Dict[str, float]:
        classes = self.classes or tuple((self.dataset_meta or {}).get("classes", ()))
        if not classes:
            raise ValueError("CustomMetric needs class names: pass classes=... or evaluate a dataset with metainfo")
        flat = custom_detection_metrics(results, classes, self.iou_threshold)
        head = f"{'Class':<16}{'AP':>8}{'APH':>8}"
        rows = [head] + [f"{c:<16}{flat[f'{c}/AP']:>8.4f}{flat[f'{c}/APH']:>8.4f}" for c in classes]
        rows.append(f"{'Mean':<16}{flat['mAP']:>8.4f}{flat['mAPH']:>8.4f}")
        print_log("3D detection AP\n" + "\n".join(rows), logger="current")
        return flat


def custom_detection_metrics(frames: Sequence[dict], classes: Sequence[str], iou_threshold=0.5) -> Dict[str, float]:
    """AP / APH per class of per-frame dicts (``pred_boxes, pred_scores, pred_labels, gt_boxes, gt_labels,
    gt_num_points``); see :class:`CustomMetric`."""
    from pc3d.evaluation.ap import average_precision, precision_recall
    from pc3d.evaluation.waymo import (DEFAULT_SCORE_CUTOFFS, class_measurements, default_iou_fn, level_counts,
                                       prepare_frames)

    def cat(key, width=None, dtype=np.float32):
        arrs = [np.asarray(f[key], dtype).reshape((-1, width) if width else -1) for f in frames]
        return np.concatenate(arrs) if arrs else np.zeros((0, width) if width else 0, dtype)

    def frame_index(key):
        return np.concatenate([np.full(len(f[key]), i) for i, f in enumerate(frames)] or [[]]).astype(np.int64)

    for f in frames:
        for key in ("pred_labels", "gt_labels"):
            lab = np.asarray(f[key])
            if len(lab) and (lab.min() < 0 or lab.max() >= len(classes)):
                raise ValueError(f"{key} must index the {len(classes)} classes {list(classes)}, got {lab}")
    gt = {"frame_id": frame_index("gt_boxes"), "type": cat("gt_labels", dtype=np.int64), "bbox": cat("gt_boxes", 7),
          "num_points": cat("gt_num_points", dtype=np.int64)}
    pred = {"frame_id": frame_index("pred_boxes"), "type": cat("pred_labels", dtype=np.int64),
            "bbox": cat("pred_boxes", 7), "score": cat("pred_scores")}
    g, p = prepare_frames(gt, pred)
    thr = iou_threshold if isinstance(iou_threshold, dict) else {c: float(iou_threshold) for c in classes}
    flat = {}
    for k, name in enumerate(classes):
        m = class_measurements(g, p, k, float(thr.get(name, 0.5)), DEFAULT_SCORE_CUTOFFS, default_iou_fn)
        tp, fp, fn, sum_ha = level_counts(m, 2)
        prec, prec_ha, rec = precision_recall(tp, fp, fn, sum_ha)
        flat[f"{name}/AP"] = float(average_precision(prec, rec, 0.05))
        flat[f"{name}/APH"] = float(average_precision(prec_ha, rec, 0.05))
    flat["mAP"] = float(np.mean([flat[f"{c}/AP"] for c in classes]))
    flat["mAPH"] = float(np.mean([flat[f"{c}/APH"] for c in classes]))
    return flat
