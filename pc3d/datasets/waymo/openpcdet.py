"""Reads the OpenPCDet-processed Waymo layout, which most Waymo users already have.

Layout (OpenPCDet's ``waymo_utils.process_single_sequence``):

- ``<points_dir>/<sequence>/<sample_idx:04d>.npy``: (N, 6) float32 rows
  [x, y, z, intensity, elongation, nlz flag] in the vehicle frame (nlz flag -1 outside / 1 inside a
  no-label zone), every laser's first return (and the second one after it when processed with
  two returns);
- ``waymo_infos_<split>.pkl``: a list with one dict per frame::

      {'point_cloud': {'num_features': 5, 'lidar_sequence': str, 'sample_idx': int},
       'frame_id': str, 'pose': (4, 4) world_from_vehicle, 'num_points_of_each_lidar': [int, ...],
       'annos': {'name': (M,) str in {'Vehicle', 'Pedestrian', 'Sign', 'Cyclist'},
                 'gt_boxes_lidar': (M, 7) [x, y, z, l, w, h, heading], 'num_points_in_gt': (M,),
                 'difficulty': (M,) 0/1/2, 'dimensions', 'location', 'heading_angles', 'obj_ids',
                 'tracking_difficulty', ...}}

Every field is validated: a missing/truncated ``.npy``, a wrong width, point counts that disagree with
``num_points_of_each_lidar``, annotation arrays of different lengths or an unknown class name raise
``ValueError`` naming the file and the field.
"""
import pickle
from pathlib import Path

import numpy as np

from . import schema as S

NAME_TO_TYPE = {"unknown": S.TYPE_UNKNOWN, "Unknown": S.TYPE_UNKNOWN, "Vehicle": S.TYPE_VEHICLE,
                "Pedestrian": S.TYPE_PEDESTRIAN, "Sign": S.TYPE_SIGN, "Cyclist": S.TYPE_CYCLIST}
TYPE_TO_NAME = {S.TYPE_VEHICLE: "Vehicle", S.TYPE_PEDESTRIAN: "Pedestrian", S.TYPE_SIGN: "Sign",
                S.TYPE_CYCLIST: "Cyclist", S.TYPE_UNKNOWN: "unknown"}
NUM_COLUMNS = 6


def load_infos(path):
    """The list of frame info dicts of ``waymo_infos_<split>.pkl`` (checked to be a list of dicts with
    ``point_cloud.lidar_sequence`` and ``point_cloud.sample_idx``)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: missing OpenPCDet Waymo info file")
    try:
        with open(path, "rb") as f:
            infos = pickle.load(f)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError) as e:
        raise ValueError(f"{path}: not a readable info pickle ({e})") from e
    if not isinstance(infos, list):
        raise ValueError(f"{path}: expected a list of frame infos, got {type(infos).__name__}")
    for i, info in enumerate(infos):
        pc = info.get("point_cloud") if isinstance(info, dict) else None
        if not isinstance(pc, dict) or "lidar_sequence" not in pc or "sample_idx" not in pc:
            raise ValueError(f"{path}: info {i} lacks field 'point_cloud' with 'lidar_sequence' and 'sample_idx'")
    return infos


def points_path(points_dir, info):
    """``<points_dir>/<sequence>/<sample_idx:04d>.npy`` of a frame info."""
    pc = info["point_cloud"]
    return Path(points_dir) / pc["lidar_sequence"] / f"{int(pc['sample_idx']):04d}.npy"


def load_points(path, expected_rows=None):
    """(N, 6) float32 [x, y, z, intensity, elongation, nlz flag] of one ``.npy`` frame.

    Args:
        expected_rows: the info's ``sum(num_points_of_each_lidar)`` to check against, or None.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: missing point file")
    try:
        pts = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{path}: unreadable or truncated .npy ({e})") from e
    if pts.ndim != 2 or pts.shape[1] != NUM_COLUMNS:
        raise ValueError(f"{path}: points must be (N, {NUM_COLUMNS}) [x, y, z, intensity, elongation, nlz], "
                         f"got shape {pts.shape}")
    if not np.issubdtype(pts.dtype, np.floating):
        raise ValueError(f"{path}: points must be float, got {pts.dtype}")
    if expected_rows is not None and len(pts) != expected_rows:
        raise ValueError(f"{path}: {len(pts)} points but the info's 'num_points_of_each_lidar' sums to "
                         f"{expected_rows}")
    return pts.astype(np.float32, copy=False)


def expected_rows(info):
    """``sum(info['num_points_of_each_lidar'])`` or None when the field is absent.

    OpenPCDet stores one count per laser; with two returns it saves both returns' points, so the
    count list then has one entry per laser and return (pc3d's writer does that)."""
    n = info.get("num_points_of_each_lidar")
    return None if n is None else int(np.sum(n))


def annos_to_labels(annos, where):
    """OpenPCDet ``annos`` -> ``schema.BoxLabels`` with Waymo types (Sign/unknown kept; the dataset
    drops them). ``where`` names the source in errors (e.g. 'waymo_infos_train.pkl frame seg_001')."""
    for key in ("name", "gt_boxes_lidar", "num_points_in_gt", "difficulty"):
        if key not in annos:
            raise ValueError(f"{where}: annos lacks field '{key}'")
    names = np.asarray(annos["name"]).reshape(-1)
    m = len(names)
    boxes = np.asarray(annos["gt_boxes_lidar"], dtype=np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 7)
    if boxes.ndim != 2 or boxes.shape[1] < 7:
        raise ValueError(f"{where}: annos field 'gt_boxes_lidar' must be (M, 7), got {boxes.shape}")
    fields = {"gt_boxes_lidar": boxes[:, :7], "num_points_in_gt": np.asarray(annos["num_points_in_gt"]).reshape(-1),
              "difficulty": np.asarray(annos["difficulty"]).reshape(-1)}
    for key, a in fields.items():
        if len(a) != m:
            raise ValueError(f"{where}: annos field '{key}' has {len(a)} rows but 'name' has {m}")
    unknown = [n for n in names.tolist() if n not in NAME_TO_TYPE]
    if unknown:
        raise ValueError(f"{where}: annos field 'name' has unknown class {unknown[0]!r} "
                         f"(known: {sorted(NAME_TO_TYPE)})")
    if not np.isfinite(fields["gt_boxes_lidar"]).all():
        raise ValueError(f"{where}: annos field 'gt_boxes_lidar' has non-finite values")
    ids = annos.get("obj_ids")
    ids = [str(i) for i in ids] if ids is not None and len(ids) == m else [str(i) for i in range(m)]
    types = np.array([NAME_TO_TYPE[n] for n in names.tolist()], dtype=np.int64)
    return S.BoxLabels(fields["gt_boxes_lidar"], types, fields["num_points_in_gt"].astype(np.int64),
                       fields["difficulty"].astype(np.int64), ids)
