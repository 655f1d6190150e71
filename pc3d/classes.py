"""The class lists of the datasets pc3d reads, defined once: loaders, metrics and tools import them from here.

A label index (``gt_labels``, ``pred_labels``) is a position in the matching tuple.
"""
import numpy as np

# Waymo-style driving classes (the simulator, Waymo, the synthetic configs).
WAYMO_CLASSES = ("Vehicle", "Pedestrian", "Cyclist")
# pc3d label index -> Waymo Label.Type id (1 vehicle, 2 pedestrian, 4 cyclist).
WAYMO_LABEL_TO_TYPE = np.array([1, 2, 4], dtype=np.int64)

# ScanNet v2 benchmark classes and their NYU40 ids: 18 for detection, 20 for segmentation.
SCANNET_DET_CLASSES = ("cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf", "picture",
                       "counter", "desk", "curtain", "refrigerator", "shower_curtain", "toilet", "sink", "bathtub",
                       "garbage_bin")
SCANNET_DET_NYU40_IDS = (3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39)
SCANNET_SEG_CLASSES = ("wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
                       "picture", "counter", "desk", "curtain", "refrigerator", "shower_curtain", "toilet", "sink",
                       "bathtub", "other_furniture")
SCANNET_SEG_NYU40_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39)

# nuScenes detection classes and box attributes (the official detection challenge's order).
NUSCENES_DETECTION_NAMES = ("car", "truck", "bus", "trailer", "construction_vehicle", "pedestrian", "motorcycle",
                            "bicycle", "traffic_cone", "barrier")
NUSCENES_ATTRIBUTE_NAMES = ("pedestrian.moving", "pedestrian.sitting_lying_down", "pedestrian.standing",
                            "cycle.with_rider", "cycle.without_rider", "vehicle.moving", "vehicle.parked",
                            "vehicle.stopped")
