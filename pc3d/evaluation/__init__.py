"""Evaluation metrics: the TensorFlow-free Waymo detection metric (``waymo.py``)."""
from pc3d.evaluation.ap import average_precision, precision_recall
from pc3d.evaluation.waymo import (WaymoMetric, flatten_waymo_metrics, format_waymo_table,
                                   waymo_detection_metrics, waymo_inputs_from_frames)

__all__ = ["WaymoMetric", "waymo_detection_metrics", "flatten_waymo_metrics", "format_waymo_table",
           "waymo_inputs_from_frames", "average_precision", "precision_recall"]
