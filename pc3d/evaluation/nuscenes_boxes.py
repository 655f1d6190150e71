"""nuScenes detection boxes for evaluation: classes, config, validation to flat arrays, filtering.

A *box set* maps ``sample_token -> per-sample fields`` (global frame, nuScenes conventions):

- ``translation (M, 3) float`` box centre x, y, z in metres.
- ``size (M, 3) float`` [w, l, h] in metres, all > 0.
- ``rotation (M, 4) float`` quaternion [w, x, y, z].
- ``velocity (M, 2) float`` vx, vy in m/s (NaN allowed: the error of that match is then ignored).
- ``detection_name (M,) str`` one of ``DETECTION_NAMES``.
- ``detection_score (M,) float`` predictions only, finite.
- ``attribute_name (M,) str`` optional, '' = none (a GT box without attribute takes no part in AAE).
- ``num_pts (M,) int`` GT only, optional: LiDAR + radar points in the box; 0 removes the box, -1 = unknown.

Per-sample lists of official result records (dicts with those keys, as in a submission JSON) are
accepted too. ``flatten_boxes`` turns a box set into one flat ``BoxArrays`` whose rows keep the
order of the samples and of the boxes inside each sample (the official evaluation breaks score
ties by that order).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from pc3d.classes import NUSCENES_ATTRIBUTE_NAMES, NUSCENES_DETECTION_NAMES
from pc3d.geometry.nuscenes import centres_in_boxes, quaternion_yaw

DETECTION_NAMES = NUSCENES_DETECTION_NAMES
ATTRIBUTE_NAMES = NUSCENES_ATTRIBUTE_NAMES
TP_METRICS = ("trans_err", "scale_err", "orient_err", "vel_err", "attr_err")
# TP errors that are undefined for a class (official rule): cones have no orientation, velocity or
# attribute; barriers have no velocity or attribute (and their orientation has period pi).
EXCLUDED_TP = {"traffic_cone": ("attr_err", "vel_err", "orient_err"), "barrier": ("attr_err", "vel_err")}


@dataclass(frozen=True)
class NuScenesEvalConfig:
    """The official ``detection_cvpr_2019`` evaluation settings (defaults)."""

    class_range: Mapping[str, float] = field(default_factory=lambda: {
        "car": 50, "truck": 50, "bus": 50, "trailer": 50, "construction_vehicle": 50, "pedestrian": 40,
        "motorcycle": 40, "bicycle": 40, "traffic_cone": 30, "barrier": 30})
    dist_ths: tuple = (0.5, 1.0, 2.0, 4.0)
    dist_th_tp: float = 2.0
    min_recall: float = 0.1
    min_precision: float = 0.1
    max_boxes_per_sample: int = 500
    mean_ap_weight: float = 5.0

    def __post_init__(self):
        if set(self.class_range) != set(DETECTION_NAMES):
            raise ValueError(f"class_range must have exactly the keys {DETECTION_NAMES}, "
                             f"got {sorted(self.class_range)}")
        if self.dist_th_tp not in self.dist_ths:
            raise ValueError(f"dist_th_tp={self.dist_th_tp} must be one of dist_ths={self.dist_ths}")
        if not (0 <= self.min_recall <= 1 and 0 <= self.min_precision < 1):
            raise ValueError(f"need 0 <= min_recall <= 1 and 0 <= min_precision < 1, got "
                             f"{self.min_recall}, {self.min_precision}")


@dataclass
class BoxArrays:
    """All boxes of a box set as flat rows (N boxes over S samples).

    sample (N,) int64 index into ``tokens``; translation (N, 3), size (N, 3) [w, l, h],
    rotation (N, 4) [w, x, y, z], yaw (N,), velocity (N, 2): float64; label (N,) int64 index into
    DETECTION_NAMES; score (N,) float64 (-1 for GT); attr (N,) int64 index into ATTRIBUTE_NAMES (-1 none);
    num_pts (N,) int64 (-1 unknown).
    """

    tokens: list
    sample: np.ndarray
    translation: np.ndarray
    size: np.ndarray
    rotation: np.ndarray
    yaw: np.ndarray
    velocity: np.ndarray
    label: np.ndarray
    score: np.ndarray
    attr: np.ndarray
    num_pts: np.ndarray

    def select(self, keep: np.ndarray) -> "BoxArrays":
        """Rows where ``keep`` ((N,) bool) is True, order kept."""
        return BoxArrays(self.tokens, *(getattr(self, f)[keep] for f in _ROW_FIELDS))


_ROW_FIELDS = ("sample", "translation", "size", "rotation", "yaw", "velocity", "label", "score", "attr", "num_pts")


def _records_to_fields(records: Sequence[Mapping]) -> dict:
    keys = ("translation", "size", "rotation", "velocity", "detection_name", "detection_score",
            "attribute_name", "num_pts")
    if not records:
        return {k: [] for k in keys}
    return {k: [r[k] for r in records] for k in keys if all(k in r for r in records)}


def _names_to_index(names, table, what: str, token: str, allow_empty: bool) -> np.ndarray:
    lookup = {n: i for i, n in enumerate(table)}
    if allow_empty:
        lookup[""] = -1
    idx = np.empty(len(names), dtype=np.int64)
    for i, n in enumerate(names):
        if n not in lookup:
            raise ValueError(f"sample {token!r}: unknown {what} {n!r} (box {i}); expected one of {table}")
        idx[i] = lookup[n]
    return idx


def _float_field(fields, key, token, shape_tail, m, default=None, allow_nan=False) -> np.ndarray:
    if key not in fields:
        if default is None:
            raise ValueError(f"sample {token!r}: missing field {key!r}")
        return np.full((m,) + shape_tail, default, dtype=np.float64)
    a = np.asarray(fields[key], dtype=np.float64)
    if m == 0 and a.size == 0:
        a = a.reshape((0,) + shape_tail)  # [] or an empty array of any shape: no boxes
    if a.shape != (m,) + shape_tail:
        raise ValueError(f"sample {token!r}: {key} must have shape {(m,) + shape_tail}, got {a.shape}")
    bad = np.isinf(a) if allow_nan else ~np.isfinite(a)
    if bad.any():
        raise ValueError(f"sample {token!r}: {key} has non-finite values (box {np.argwhere(bad)[0, 0]})")
    return a


def flatten_boxes(boxes: Mapping[str, object], is_gt: bool) -> BoxArrays:
    """Validate a box set (see the module docstring) and return it as flat ``BoxArrays``."""
    tokens, parts = list(boxes.keys()), []
    for s, token in enumerate(tokens):
        fields = boxes[token]
        if isinstance(fields, (list, tuple)):
            fields = _records_to_fields(fields)
        if "detection_name" not in fields:
            raise ValueError(f"sample {token!r}: missing field 'detection_name'")
        names = list(fields["detection_name"])
        m = len(names)
        label = _names_to_index(names, DETECTION_NAMES, "detection_name", token, allow_empty=False)
        size = _float_field(fields, "size", token, (3,), m)
        if (size <= 0).any():
            raise ValueError(f"sample {token!r}: size must be > 0, got {size[(size <= 0).any(1)][0].tolist()}")
        rotation = _float_field(fields, "rotation", token, (4,), m)
        if (np.linalg.norm(rotation, axis=1) < 1e-12).any():
            raise ValueError(f"sample {token!r}: rotation quaternion of zero length")
        if is_gt:
            score = np.full(m, -1.0)
        else:
            score = _float_field(fields, "detection_score", token, (), m)
        attr_names = list(fields.get("attribute_name", [""] * m))
        if len(attr_names) != m:
            raise ValueError(f"sample {token!r}: attribute_name has {len(attr_names)} entries for {m} boxes")
        num_pts = np.asarray(fields.get("num_pts", np.full(m, -1)), dtype=np.int64).reshape(-1)
        if num_pts.shape != (m,):
            raise ValueError(f"sample {token!r}: num_pts must have shape ({m},), got {num_pts.shape}")
        parts.append(dict(
            sample=np.full(m, s, dtype=np.int64), translation=_float_field(fields, "translation", token, (3,), m),
            size=size, rotation=rotation, yaw=quaternion_yaw(rotation),
            velocity=_float_field(fields, "velocity", token, (2,), m, default=np.nan if is_gt else None,
                                  allow_nan=True),
            label=label, score=score,
            attr=_names_to_index(attr_names, ATTRIBUTE_NAMES, "attribute_name", token, allow_empty=True),
            num_pts=num_pts))
    if not parts:
        empty = dict(sample=(0,), translation=(0, 3), size=(0, 3), rotation=(0, 4), yaw=(0,), velocity=(0, 2),
                     label=(0,), score=(0,), attr=(0,), num_pts=(0,))
        return BoxArrays(tokens, **{k: np.zeros(v, dtype=np.int64 if k in ("sample", "label", "attr", "num_pts")
                                                 else np.float64) for k, v in empty.items()})
    return BoxArrays(tokens, **{f: np.concatenate([p[f] for p in parts]) for f in _ROW_FIELDS})


def filter_boxes(arr: BoxArrays, ego_translation: np.ndarray, cfg: NuScenesEvalConfig,
                 bike_racks: Mapping[str, Mapping] | None = None) -> BoxArrays:
    """The official box filter, applied to GT and predictions alike, in the official order.

    1. keep a box when its xy distance to the ego vehicle is < its class range;
    2. drop boxes with ``num_pts == 0`` (GT with no LiDAR or radar point; -1 means unknown, kept);
    3. drop bicycles and motorcycles whose centre lies inside a bike rack of the same sample.

    Args:
        arr: the boxes. ego_translation: (S, 3) float64 global ego position of each sample of
            ``arr.tokens`` (ego pose of the LIDAR_TOP keyframe).
        bike_racks: optional ``sample_token -> {translation (R, 3), size (R, 3), rotation (R, 4)}``
            of the ``static_object.bicycle_rack`` annotations.
    """
    rng = np.array([cfg.class_range[n] for n in DETECTION_NAMES], dtype=np.float64)
    rel = arr.translation[:, :2] - ego_translation[arr.sample, :2]
    keep = np.sqrt(np.sum(rel * rel, axis=1)) < rng[arr.label]
    keep &= arr.num_pts != 0
    if bike_racks:
        cycles = np.isin(arr.label, [DETECTION_NAMES.index("bicycle"), DETECTION_NAMES.index("motorcycle")])
        for s, token in enumerate(arr.tokens):
            racks = bike_racks.get(token)
            rows = np.flatnonzero(keep & cycles & (arr.sample == s))
            if racks is None or len(rows) == 0:
                continue
            inside = centres_in_boxes(arr.translation[rows], racks["translation"], racks["size"], racks["rotation"])
            keep[rows[inside.any(axis=1)]] = False
    return arr.select(keep)
