"""Evaluation metrics equal to the official ones: Waymo (no TensorFlow), nuScenes, ScanNet."""
from pc3d.evaluation import classification  # noqa: F401  (ClassificationAccuracy, PointSegmentationMetric)
from pc3d.evaluation.ap import average_precision, precision_recall
from pc3d.evaluation.box_errors import box_errors, format_box_errors
from pc3d.evaluation.custom import CustomMetric, custom_detection_metrics
from pc3d.evaluation.nuscenes import NuScenesMetric, nuscenes_detection_metrics
from pc3d.evaluation.scannet import ScanNetDetMetric, scannet_detection_metrics
from pc3d.evaluation.scannet_seg import ScanNetSegMetric, segmentation_confusion, segmentation_metrics
from pc3d.evaluation.waymo import (WaymoMetric, flatten_waymo_metrics, format_waymo_table,
                                   waymo_detection_metrics, waymo_inputs_from_frames)

__all__ = ["WaymoMetric", "waymo_detection_metrics", "flatten_waymo_metrics", "format_waymo_table",
           "waymo_inputs_from_frames", "box_errors", "format_box_errors", "average_precision", "precision_recall",
           "CustomMetric", "custom_detection_metrics", "NuScenesMetric", "nuscenes_detection_metrics",
           "ScanNetDetMetric", "scannet_detection_metrics",
           "ScanNetSegMetric", "segmentation_confusion", "segmentation_metrics"]
