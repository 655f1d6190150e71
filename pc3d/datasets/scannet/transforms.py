"""Indoor transforms (``t(item, rng) -> item``), registered in ``pc3d.registry.TRANSFORMS``.

They act on ScanNet items (see ``dataset``): ``points (N, 6) [x, y, z, r, g, b]`` and the per-point
``pts_semantic_mask`` / ``pts_instance_mask`` (N,), which always stay row-aligned with the points;
axis-aligned ``gt_boxes (M, 6|7)`` move with the points and stay axis-aligned.
"""
import numpy as np

from ...registry import TRANSFORMS

POINT_KEYS = ("pts_semantic_mask", "pts_instance_mask")


def _take(item, idx):
    item["points"] = item["points"][idx]
    for k in POINT_KEYS:
        if k in item:
            item[k] = item[k][idx]
    return item


@TRANSFORMS.register_module()
class IndoorPointSample:
    """Keeps at most ``num_points`` random points (all of them, shuffled, when there are fewer)."""

    def __init__(self, num_points):
        if int(num_points) < 1:
            raise ValueError(f"num_points must be >= 1, got {num_points}")
        self.num_points = int(num_points)

    def __call__(self, item, rng):
        n = len(item["points"])
        return _take(item, rng.permutation(n)[:self.num_points])


@TRANSFORMS.register_module()
class IndoorFlip:
    """Mirrors x (``flip_x`` probability) and y (``flip_y``): x -> -x etc. for points and box centres."""

    def __init__(self, flip_x=0.5, flip_y=0.5):
        self.p = (float(flip_x), float(flip_y))

    def __call__(self, item, rng):
        for axis, p in enumerate(self.p):
            if rng.random() < p:
                item["points"] = item["points"].copy()
                item["points"][:, axis] *= -1
                if "gt_boxes" in item and len(item["gt_boxes"]):
                    item["gt_boxes"] = item["gt_boxes"].copy()
                    item["gt_boxes"][:, axis] *= -1
        return item


@TRANSFORMS.register_module()
class IndoorGlobalRotScale:
    """Rotates about +z by U(rot_range) and scales by U(scale_range), about the origin.

    Boxes stay axis-aligned: a rotated box becomes the axis-aligned box around its rotated footprint
    (exact for multiples of 90 deg, enlarged otherwise, as mmdetection3d does for ScanNet).
    """

    def __init__(self, rot_range=(-np.pi, np.pi), scale_range=(0.9, 1.1)):
        self.rot_range, self.scale_range = tuple(rot_range), tuple(scale_range)

    def __call__(self, item, rng):
        a = rng.uniform(*self.rot_range)
        s = rng.uniform(*self.scale_range)
        c, sn = np.cos(a), np.sin(a)
        rot = np.array([[c, -sn], [sn, c]], dtype=np.float32)
        pts = item["points"].copy()
        pts[:, :2] = pts[:, :2] @ rot.T
        pts[:, :3] *= np.float32(s)
        item["points"] = pts
        if "gt_boxes" in item and len(item["gt_boxes"]):
            b = item["gt_boxes"].copy()
            half = np.abs(rot) @ b[:, 3:5].T / 2  # half extents of the rotated footprint's AABB
            b[:, :2] = b[:, :2] @ rot.T
            b[:, 3:5] = 2 * half.T
            b[:, :6] *= np.float32(s)
            item["gt_boxes"] = b
        return item


@TRANSFORMS.register_module()
class IndoorColorJitter:
    """Adds N(0, ``std``) per channel and per scene (lighting) plus N(0, ``point_std``) per point to r, g, b
    (0..255 scale), clipped to [0, 255]."""

    def __init__(self, std=10.0, point_std=3.0):
        self.std, self.point_std = float(std), float(point_std)

    def __call__(self, item, rng):
        pts = item["points"].copy()
        n = len(pts)
        noise = rng.normal(0, self.std, 3) + rng.normal(0, self.point_std, (n, 3))
        pts[:, 3:6] = np.clip(pts[:, 3:6] + noise.astype(np.float32), 0, 255)
        item["points"] = pts
        return item


@TRANSFORMS.register_module()
class IndoorNormalizeColor:
    """r, g, b from 0..255 to 0..1 (model input scale)."""

    def __call__(self, item, rng=None):
        pts = item["points"].copy()
        pts[:, 3:6] = pts[:, 3:6] / np.float32(255.0)
        item["points"] = pts
        return item
