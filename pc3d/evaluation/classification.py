"""Classification accuracy for object datasets (ModelNet, ScanObjectNN, synthetic shapes)."""
import numpy as np
from mmengine.evaluator import BaseMetric

from pc3d.registry import METRICS


def classification_accuracy(pred: np.ndarray, gt: np.ndarray, num_classes: int = None) -> dict:
    """Overall and class-mean accuracy.

    Args:
        pred: (S,) int predicted class per sample; gt: (S,) int true class.
        num_classes: K; classes absent from ``gt`` are left out of the class mean.

    Returns:
        dict ``overall_acc`` (fraction of correct samples) and ``mean_class_acc`` (mean over classes
        present in ``gt`` of their per-class recall), both in [0, 1] (nan when there are no samples).
    """
    pred, gt = np.asarray(pred, dtype=np.int64), np.asarray(gt, dtype=np.int64)
    if pred.shape != gt.shape or pred.ndim != 1:
        raise ValueError(f"pred and gt must be equal-length 1-D arrays, got {pred.shape} and {gt.shape}")
    if len(gt) == 0:
        return dict(overall_acc=float("nan"), mean_class_acc=float("nan"))
    k = num_classes if num_classes is not None else int(max(pred.max(), gt.max())) + 1
    correct = np.bincount(gt[pred == gt], minlength=k)
    total = np.bincount(gt, minlength=k)
    present = total > 0
    return dict(overall_acc=float((pred == gt).mean()),
                mean_class_acc=float((correct[present] / total[present]).mean()))


@METRICS.register_module()
class ClassificationAccuracy(BaseMetric):
    """mmengine metric over the classifier's 'predict' outputs (dicts with ``pred_label``, ``gt_label``).

    Reports ``overall_acc`` and ``mean_class_acc`` in percent.
    """

    default_prefix = "cls"

    def process(self, data_batch, data_samples) -> None:
        for s in data_samples:
            if s.get("gt_label") is None:
                raise ValueError("ClassificationAccuracy needs gt_label in every prediction")
            self.results.append((int(s["pred_label"]), int(s["gt_label"])))

    def compute_metrics(self, results: list) -> dict:
        pred, gt = (np.array(x, dtype=np.int64) for x in zip(*results)) if results else (np.zeros(0), np.zeros(0))
        classes = (self.dataset_meta or {}).get("classes")
        acc = classification_accuracy(pred, gt, len(classes) if classes else None)
        return {k: 100.0 * v for k, v in acc.items()}


def point_segmentation_scores(pred: np.ndarray, gt: np.ndarray, num_classes: int) -> dict:
    """Per-point accuracy and mean IoU over classes present in ``gt`` or ``pred``.

    Args:
        pred, gt: (P,) int point labels (all points of all samples concatenated); num_classes: K.

    Returns:
        dict ``point_acc`` and ``miou`` in [0, 1] (IoU_k = TP / (TP + FP + FN) from the confusion matrix).
    """
    pred, gt = np.asarray(pred, dtype=np.int64), np.asarray(gt, dtype=np.int64)
    if pred.shape != gt.shape or pred.ndim != 1:
        raise ValueError(f"pred and gt must be equal-length 1-D arrays, got {pred.shape} and {gt.shape}")
    conf = np.bincount(gt * num_classes + pred, minlength=num_classes ** 2).reshape(num_classes, num_classes)
    tp = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - tp
    present = union > 0
    return dict(point_acc=float(tp.sum() / max(conf.sum(), 1)), miou=float((tp[present] / union[present]).mean()))


@METRICS.register_module()
class PointSegmentationMetric(BaseMetric):
    """mmengine metric over 'predict' outputs with ``pred_point_labels`` / ``gt_point_labels`` (N,) tensors.

    Reports ``point_acc`` and ``miou`` in percent; the class count comes from ``dataset_meta['classes']``.
    """

    default_prefix = "seg"

    def process(self, data_batch, data_samples) -> None:
        for s in data_samples:
            self.results.append((np.asarray(s["pred_point_labels"]), np.asarray(s["gt_point_labels"])))

    def compute_metrics(self, results: list) -> dict:
        classes = (self.dataset_meta or {}).get("classes")
        if not classes:
            raise ValueError("PointSegmentationMetric needs dataset_meta['classes']")
        pred = np.concatenate([r[0] for r in results])
        gt = np.concatenate([r[1] for r in results])
        return {k: 100.0 * v for k, v in point_segmentation_scores(pred, gt, len(classes)).items()}
