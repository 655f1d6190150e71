"""Frame labels from the scan: LiDAR points per box, Waymo difficulty, and the zero-point split.

The Waymo Open Dataset's difficulty levels: a box with <= 5 LiDAR points is LEVEL_2 (difficulty 2), otherwise
LEVEL_1 (1); boxes with no point at all stay in the frame's files (``empty_boxes``/``empty_labels``) but
are not ground truth, so evaluation never asks a detector to find something it cannot see.
"""
import numpy as np

from ..box_utils import points_in_boxes_indices

LEVEL_1, LEVEL_2 = 1, 2
LEVEL_2_MAX_POINTS = 5


def difficulty_from_points(num_points):
    """(M,) int64 difficulty: 2 (LEVEL_2) where ``num_points`` (M,) <= 5, else 1 (LEVEL_1)."""
    return np.where(np.asarray(num_points) <= LEVEL_2_MAX_POINTS, LEVEL_2, LEVEL_1).astype(np.int64)


def make_labels(points, boxes, labels, point_object_id=None):
    """Counts points per box and splits off empty boxes.

    Args:
        points: (N, >=3) float32 ego-frame points.
        boxes: (M, 7) float box labels; labels: (M,) int64 class indices.
        point_object_id: optional (N,) int32 index into ``boxes`` of the object each point hit (-1 none).
    Returns:
        dict with gt_boxes (K, 7) float32, gt_labels (K,) int64, gt_num_points (K,) int64,
        gt_difficulty (K,) int64 for the boxes with >= 1 point, and empty_boxes (M-K, 7) float32,
        empty_labels (M-K,) int64 for the rest (order of the input kept in both); with
        ``point_object_id``, also point_object_id (N,) int32 re-indexed into gt_boxes (-1 for
        background and for the rare hit whose noisy point left an otherwise empty box).
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 7)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    counts = np.array([len(i) for i in points_in_boxes_indices(points, boxes)], dtype=np.int64)
    seen = counts > 0
    out = {
        "gt_boxes": boxes[seen],
        "gt_labels": labels[seen],
        "gt_num_points": counts[seen],
        "gt_difficulty": difficulty_from_points(counts[seen]),
        "empty_boxes": boxes[~seen],
        "empty_labels": labels[~seen],
    }
    if point_object_id is not None:
        remap = np.where(seen, np.cumsum(seen) - 1, -1).astype(np.int32)
        pid = np.asarray(point_object_id)
        out["point_object_id"] = np.where(pid >= 0, remap[np.maximum(pid, 0)], -1).astype(np.int32)
    return out
