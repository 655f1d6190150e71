"""Point-cloud transforms of the data pipeline, registered in ``pc3d.registry.TRANSFORMS``.

Every transform is a callable ``t(item, rng) -> item`` on a dataset item (numpy arrays):
``points (N, C) float32 [x, y, z, ...]``, ``gt_boxes (M, 7) float32`` (or ``(M, 9)`` with velocity
``vx, vy`` in columns 7:9, nuScenes), ``gt_labels``, ``gt_num_points``, ``gt_attributes``,
``gt_difficulty`` ``(M,) int64``. Randomness comes only from ``rng`` (a ``numpy.random.Generator``),
which the dataset derives per item (see ``SyntheticDataset``): a transform is deterministic for a
given generator state. Boxes and points always move together, and headings stay in [-pi, pi).
"""
import inspect

import numpy as np

from ..registry import TRANSFORMS
from .box_utils import bev_overlap_matrix, points_in_boxes_indices, wrap_heading

BOX_KEYS = ("gt_boxes", "gt_labels", "gt_num_points", "gt_difficulty", "gt_attributes")


def _select_boxes(item, keep):
    for k in BOX_KEYS:
        if k in item:
            item[k] = item[k][keep]
    return item


def build_transform(cfg):
    """A transform from a config dict (``type=`` a registered name) or an already built callable."""
    if isinstance(cfg, dict):
        return TRANSFORMS.build(cfg)
    if callable(cfg):
        return cfg
    raise TypeError(f"a pipeline entry must be a dict config or a callable, got {type(cfg).__name__}")


def _with_range(cfg, point_cloud_range):
    """``cfg`` with ``point_cloud_range`` filled in when its transform takes one and the config leaves it unset."""
    if point_cloud_range is None or not isinstance(cfg, dict) or cfg.get("point_cloud_range") is not None:
        return cfg
    cls = TRANSFORMS.get(cfg["type"]) if isinstance(cfg.get("type"), str) else cfg.get("type")
    if cls is None or "point_cloud_range" not in inspect.signature(cls.__init__).parameters:
        return cfg
    return {**cfg, "point_cloud_range": list(point_cloud_range)}


@TRANSFORMS.register_module()
class Compose:
    """Applies a list of transforms (configs or callables) in order, sharing one ``rng``.

    ``point_cloud_range`` (the dataset's detection range) fills every transform config that takes a
    ``point_cloud_range`` and leaves it unset (e.g. ``dict(type='RangeFilter')``), so a config that changes the
    range sets it once on the dataset instead of restating its pipelines.
    """

    def __init__(self, transforms, point_cloud_range=None):
        self.transforms = [build_transform(_with_range(t, point_cloud_range)) for t in transforms]

    def __call__(self, item, rng):
        for t in self.transforms:
            item = t(item, rng)
        return item

    def __repr__(self):
        return f"Compose({self.transforms})"


@TRANSFORMS.register_module()
class RangeFilter:
    """Keeps points inside ``point_cloud_range`` = [x_min, y_min, z_min, x_max, y_max, z_max] and boxes
    whose centre lies inside it.

    Args:
        point_cloud_range: the range (6 floats, min < max per axis); None in a config takes the dataset's.
        points_z: also test the points' z (OpenPCDet tests only x and y and leaves z to the voxeliser).
        boxes: which part of a box centre is tested: 'xy' (default: a box's z is not tested, tall
            objects keep their label), 'xyz' (OpenPCDet's ``mask_boxes_outside_range_numpy``) or
            'none' (boxes are all kept, e.g. evaluation against every ground-truth box).
        interval: 'half_open' [min, max) (default), 'closed' [min, max] (OpenPCDet) or 'open'
            (min, max) (mmdet3d's ``PointsRangeFilter`` / ``ObjectRangeFilter``).
    """

    INTERVALS = ("half_open", "closed", "open")
    BOX_RULES = ("xy", "xyz", "none")

    def __init__(self, point_cloud_range=None, points_z=True, boxes="xy", interval="half_open"):
        if point_cloud_range is None:
            raise ValueError("RangeFilter needs a point_cloud_range: give it to the transform or set the dataset's "
                             "point_cloud_range (the pipeline takes it from there)")
        r = np.asarray(point_cloud_range, dtype=np.float32)
        if r.shape != (6,) or not (r[:3] < r[3:]).all():
            raise ValueError(f"point_cloud_range must be [x0, y0, z0, x1, y1, z1] with x0 < x1 etc., got {point_cloud_range}")
        if interval not in self.INTERVALS:
            raise ValueError(f"RangeFilter: interval must be one of {self.INTERVALS}, got {interval!r}")
        if boxes not in self.BOX_RULES:
            raise ValueError(f"RangeFilter: boxes must be one of {self.BOX_RULES}, got {boxes!r}")
        self.range, self.points_z, self.boxes, self.interval = r, bool(points_z), boxes, interval

    def _inside(self, v, lo, hi):
        """(N, k) bool: each coordinate of ``v`` (N, k) within [lo, hi] under ``interval``."""
        if self.interval == "closed":
            return (v >= lo) & (v <= hi)
        if self.interval == "open":
            return (v > lo) & (v < hi)
        return (v >= lo) & (v < hi)

    def __call__(self, item, rng=None):
        p, r = item["points"], self.range
        k = 3 if self.points_z else 2
        item["points"] = p[self._inside(p[:, :k], r[:k], r[3:3 + k]).all(1)]
        if "gt_boxes" in item and self.boxes != "none":
            b, k = item["gt_boxes"], 3 if self.boxes == "xyz" else 2
            _select_boxes(item, self._inside(b[:, :k], r[:k], r[3:3 + k]).all(1))
        return item


@TRANSFORMS.register_module()
class PointsTanh:
    """Squashes point feature columns with ``tanh`` (Waymo's intensity and elongation are unbounded).

    Args:
        dims: the point columns to squash, e.g. (4,) for the elongation of [x, y, z, intensity,
            elongation] points whose intensity the dataset already squashed (``tanh_intensity``).
    """

    def __init__(self, dims=(3,)):
        self.dims = tuple(int(d) for d in dims)
        if not self.dims or min(self.dims) < 3:
            raise ValueError(f"PointsTanh: dims must name feature columns (>= 3, after x, y, z), got {dims}")

    def __call__(self, item, rng=None):
        p = item["points"]
        if p.shape[1] <= max(self.dims):
            raise ValueError(f"PointsTanh: points have {p.shape[1]} columns, dims {self.dims} ask for column "
                             f"{max(self.dims)}")
        p = p.copy()
        p[:, self.dims] = np.tanh(p[:, self.dims])
        item["points"] = p
        return item


@TRANSFORMS.register_module()
class GlobalRotScaleTrans:
    """Rotates the scene about +z by an angle ~ U(rot_range), scales it by ~ U(scale_range) and shifts it
    by ~ N(0, translation_std) per axis. Box sizes scale, headings rotate and wrap."""

    def __init__(self, rot_range=(-np.pi / 4, np.pi / 4), scale_range=(0.95, 1.05), translation_std=(0.0, 0.0, 0.0)):
        self.rot_range, self.scale_range = tuple(rot_range), tuple(scale_range)
        self.translation_std = np.asarray(translation_std, dtype=np.float64)

    def __call__(self, item, rng):
        angle = rng.uniform(*self.rot_range)
        scale = rng.uniform(*self.scale_range)
        shift = rng.standard_normal(3) * self.translation_std
        c, s = np.cos(angle), np.sin(angle)
        p = item["points"].copy()
        x, y = p[:, 0].copy(), p[:, 1].copy()
        # Explicit float32 arithmetic on columns: ~10x faster than a float64 matmul on the strided slice.
        p[:, 0] = (np.float32(c * scale) * x - np.float32(s * scale) * y) + np.float32(shift[0])
        p[:, 1] = (np.float32(s * scale) * x + np.float32(c * scale) * y) + np.float32(shift[1])
        p[:, 2] = p[:, 2] * np.float32(scale) + np.float32(shift[2])
        item["points"] = p
        if "gt_boxes" in item and len(item["gt_boxes"]):
            b = item["gt_boxes"].astype(np.float64)
            b[:, :2] = b[:, :2] @ np.array([[c, -s], [s, c]]).T
            b[:, :3] = b[:, :3] * scale + shift
            b[:, 3:6] *= scale
            b[:, 6] = wrap_heading(b[:, 6] + angle)
            if b.shape[1] >= 9:  # velocity rotates and scales with the scene (translation leaves it)
                b[:, 7:9] = (b[:, 7:9] @ np.array([[c, -s], [s, c]]).T) * scale
            item["gt_boxes"] = b.astype(np.float32)
        return item


@TRANSFORMS.register_module()
class RandomFlip:
    """Mirrors the scene: across the x axis (y -> -y, heading -> -heading) with ``flip_x_prob``, and
    across the y axis (x -> -x, heading -> pi - heading) with ``flip_y_prob``."""

    def __init__(self, flip_x_prob=0.5, flip_y_prob=0.5):
        self.flip_x_prob, self.flip_y_prob = flip_x_prob, flip_y_prob

    def __call__(self, item, rng):
        fx, fy = rng.random() < self.flip_x_prob, rng.random() < self.flip_y_prob
        if not (fx or fy):
            return item
        p = item["points"].copy()
        b = item["gt_boxes"].astype(np.float64) if "gt_boxes" in item else np.zeros((0, 7))
        has_velocity = b.shape[1] >= 9
        if fx:
            p[:, 1] = -p[:, 1]
            b[:, 1] = -b[:, 1]
            b[:, 6] = -b[:, 6]
            if has_velocity:
                b[:, 8] = -b[:, 8]
        if fy:
            p[:, 0] = -p[:, 0]
            b[:, 0] = -b[:, 0]
            b[:, 6] = np.pi - b[:, 6]
            if has_velocity:
                b[:, 7] = -b[:, 7]
        b[:, 6] = wrap_heading(b[:, 6])
        item["points"] = p
        if "gt_boxes" in item:
            item["gt_boxes"] = b.astype(np.float32)
        return item


@TRANSFORMS.register_module()
class PointShuffle:
    """Randomly permutes the point rows (voxelisers keep first-seen points: this removes scan-order bias)."""

    def __call__(self, item, rng):
        item["points"] = item["points"][rng.permutation(len(item["points"]))]
        return item


@TRANSFORMS.register_module()
class ObjectSample:
    """GT-sampling: pastes objects from a ground-truth database into the scene.

    The database (``tools/create_data.py synthetic|waymo ... --gt-database``) holds the LiDAR points of
    every training object (relative to its box centre) and its box at its original position. For each
    class the transform draws ``sample_groups[class] - existing`` objects with at least ``min_points``
    points, drops those whose BEV box overlaps an existing box or another drawn one (``collision``),
    removes the scene's points inside each pasted box and adds the object's points. Objects keep their
    original position, so their occlusion pattern stays consistent with the sensor.

    Args:
        db_path: the database ``.npz`` (``pc3d.datasets.gt_database``).
        sample_groups: {class: objects per scene}, scene objects of the class included.
        min_points: int for every class, or {class: int}: database objects with fewer points are never
            drawn (classes not named use 0).
        classes: label order of the database and the scene (default ``pc3d.datasets.CLASSES``).
        collision: how drawn objects that overlap each other are resolved, class by class in label
            order, each class also checked against the scene's boxes and the objects pasted for the
            classes before it: 'greedy' (default; mmdet3d's ``DataBaseSampler``: a drawn object is kept
            when it clears every box kept before it) or 'drop_both' (OpenPCDet's ``DataBaseSampler``:
            two drawn objects of a class that overlap are both dropped).
    """

    COLLISIONS = ("greedy", "drop_both")

    def __init__(self, db_path, sample_groups=None, min_points=5, classes=None, collision="greedy"):
        from . import CLASSES
        from .gt_database import load_gt_database

        self.classes = tuple(classes or CLASSES)
        self.sample_groups = dict(sample_groups or {"Vehicle": 15, "Pedestrian": 8, "Cyclist": 8})
        if isinstance(min_points, dict):
            self.min_points = {c: int(min_points.get(c, 0)) for c in self.classes}
            named = set(min_points)
        else:
            self.min_points = {c: int(min_points) for c in self.classes}
            named = set()
        unknown = (set(self.sample_groups) | named) - set(self.classes)
        if unknown:
            raise ValueError(f"ObjectSample: sample_groups/min_points name unknown classes {sorted(unknown)}; "
                             f"classes are {self.classes}")
        if collision not in self.COLLISIONS:
            raise ValueError(f"ObjectSample: collision must be one of {self.COLLISIONS}, got {collision!r}")
        self.collision = collision
        self.db = load_gt_database(db_path)
        self.by_class = {c: np.nonzero((self.db["labels"] == i) & (self.db["num_points"] >= self.min_points[c]))[0]
                         for i, c in enumerate(self.classes)}

    def _resolve_greedy(self, cand, boxes):
        """Indices into ``cand`` kept: each clears the scene and every candidate kept before it."""
        cboxes = self.db["boxes"][cand]
        hit_existing = bev_overlap_matrix(cboxes, boxes).any(1)
        mutual = bev_overlap_matrix(cboxes, cboxes)
        chosen = []
        for k in range(len(cand)):
            if not hit_existing[k] and not mutual[k, chosen].any():
                chosen.append(k)
        return chosen

    def _resolve_drop_both(self, picks, boxes):
        """Per class: candidates overlapping the boxes so far or any other candidate of the class go."""
        chosen, start, existing = [], 0, boxes
        for cand in picks:
            cboxes = self.db["boxes"][cand]
            mutual = bev_overlap_matrix(cboxes, cboxes)
            np.fill_diagonal(mutual, False)
            ok = np.nonzero(~bev_overlap_matrix(cboxes, existing).any(1) & ~mutual.any(1))[0]
            chosen += (start + ok).tolist()
            existing = np.concatenate([existing, cboxes[ok]])
            start += len(cand)
        return chosen

    def __call__(self, item, rng):
        boxes = item["gt_boxes"]
        if boxes.shape[1] != self.db["boxes"].shape[1] or "gt_attributes" in item:
            # Pasting 7-column database boxes into 9-column (velocity) scenes would invent velocities.
            raise ValueError(f"ObjectSample: scene boxes have {boxes.shape[1]} columns"
                             f"{' and attributes' if 'gt_attributes' in item else ''}, the database's "
                             f"{self.db['boxes'].shape[1]}; build a database from the same dataset")
        picks = []
        for i, cls in enumerate(self.classes):
            want = self.sample_groups.get(cls, 0) - int((item["gt_labels"] == i).sum())
            pool = self.by_class[cls]
            if want > 0 and len(pool):
                picks.append(rng.choice(pool, size=min(want, len(pool)), replace=False))
        if not picks:
            return item
        cand = np.concatenate(picks)
        if self.collision == "greedy":
            chosen = self._resolve_greedy(cand, boxes)
        else:
            chosen = self._resolve_drop_both(picks, boxes)
        if not chosen:
            return item
        sel = cand[chosen]
        sboxes = self.db["boxes"][sel]
        pts = item["points"]
        inside = points_in_boxes_indices(pts, sboxes)
        keep = np.ones(len(pts), dtype=bool)
        for idx in inside:  # nothing of the scene stays inside a pasted box
            keep[idx] = False
        off = self.db["offsets"]
        new = np.concatenate([self.db["points"][off[j]:off[j + 1]] for j in sel]).astype(np.float64)
        new[:, :3] += np.repeat(sboxes[:, :3].astype(np.float64), off[sel + 1] - off[sel], axis=0)
        item["points"] = np.concatenate([pts[keep], new[:, :pts.shape[1]].astype(np.float32)])
        item["gt_boxes"] = np.concatenate([boxes, sboxes]).astype(np.float32)
        item["gt_labels"] = np.concatenate([item["gt_labels"], self.db["labels"][sel]])
        if "gt_num_points" in item:
            item["gt_num_points"] = np.concatenate([item["gt_num_points"], self.db["num_points"][sel]])
        if "gt_difficulty" in item:
            item["gt_difficulty"] = np.concatenate([item["gt_difficulty"], self.db["difficulty"][sel]])
        return item
