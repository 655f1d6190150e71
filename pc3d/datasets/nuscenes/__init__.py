"""nuScenes: native tables and ``.pcd.bin`` scans -> pc3d items; the simulator's nuScenes writer.

Data flow: ``tables`` (JSON tables, token indexes) -> ``sweeps`` (keyframe + previous sweeps in the
keyframe LiDAR frame, time-lag column) and ``boxes`` (annotations -> LiDAR-frame boxes with velocity,
10 detection classes) -> ``convert`` (``create_data.py nuscenes``: info file per ``splits`` split) ->
``dataset`` (``NuScenesDataset``). ``writer`` writes a nuScenes-layout dataset from frames, and
``simulate`` makes such frames with pc3d's LiDAR simulator. Nothing here imports nuscenes-devkit.
"""
from .boxes import CATEGORY_TO_DETECTION, DETECTION_NAMES, detection_name
from .dataset import NuScenesDataset, load_infos
from .tables import NuScenesFormatError, NuScenesTables

__all__ = ["CATEGORY_TO_DETECTION", "DETECTION_NAMES", "NuScenesDataset", "NuScenesFormatError", "NuScenesTables",
           "detection_name", "load_infos"]
