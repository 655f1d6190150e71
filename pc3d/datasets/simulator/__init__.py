"""pc3d's built-in LiDAR simulator: procedural driving scenes scanned by a Waymo-like spinning LiDAR.

``simulate_frame(seed)`` returns one labelled frame, bit-identical for the same seed:

- points (N, 5) float32 [x, y, z, intensity, elongation] in the **ego frame**: x forward (the ego's
  heading), y left, z up, origin on the ground under the LiDAR, which sits at (0, 0, 1.9); the ground
  near the ego is at z ~ 0 and label boxes rest on it. intensity and elongation are in [0, 1).
- point_object_id (N,) int32: index into gt_boxes of the object each point hit, -1 for background
  (kept for debugging and segmentation uses).
- gt_boxes (M, 7) float32 [x, y, z, dx, dy, dz, heading] (box centre; heading wrapped to [-pi, pi)),
  gt_labels (M,) int64 (0 Vehicle, 1 Pedestrian, 2 Cyclist), gt_num_points (M,) int64 LiDAR points in
  each box, gt_difficulty (M,) int64 (2 = LEVEL_2 when <= 5 points, else 1);
- empty_boxes (K, 7) float32 / empty_labels (K,) int64: objects with no point (not ground truth).
- frame_id str, seed int.

Modules: ``scene`` (road layout, terrain, kerbs, buildings, street furniture), ``objects`` (class sizes
and shapes), ``traffic`` (object placement), ``meshes`` (primitives), ``sensor`` (LiDAR model),
``labels`` (points per box, difficulty), ``writer`` (files on disk).
"""
from dataclasses import dataclass

import numpy as np

from .sensor import LidarConfig


@dataclass(frozen=True)
class SceneConfig:
    """Object counts per frame, each drawn uniformly from the inclusive range."""
    vehicles: tuple = (15, 40)
    pedestrians: tuple = (5, 20)
    cyclists: tuple = (3, 10)


def simulate_frame(seed, frame_id=None, lidar=LidarConfig(), scene=SceneConfig()):
    """Generates one frame (see the module docstring for the returned dict) from an integer ``seed``."""
    from . import objects, scene as world, traffic
    from .labels import make_labels
    from .meshes import MeshBuilder
    from .sensor import scan

    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
    lay = world.sample_layout(rng)
    builder, foot = MeshBuilder(), world.Footprints()
    world.add_ground(builder, lay, rng)
    world.add_sidewalks(builder, lay, rng)
    world.add_buildings(builder, foot, lay, rng)
    world.add_street_furniture(builder, foot, lay, rng)
    counts = [int(rng.integers(lo, hi + 1)) for lo, hi in (scene.vehicles, scene.pedestrians, scene.cyclists)]
    boxes, labels, kinds = traffic.place_objects(lay, foot, rng, counts)
    for k, (box, cls, kind) in enumerate(zip(boxes, labels, kinds)):
        # Shapes are inset 8 cm (5 cm at the top) inside the label box, so that range noise (sigma 3 cm
        # at 65 m) keeps nearly all their points inside it, as a fitted label would; feet stay on the ground.
        inner = box.copy()
        inner[3:6] -= (0.16, 0.16, 0.05)
        inner[2] -= 0.025
        if cls == objects.VEHICLE:
            objects.add_vehicle(builder, inner, kind, rng, k)
        elif cls == objects.PEDESTRIAN:
            objects.add_pedestrian(builder, inner, rng, k)
        else:
            objects.add_cyclist(builder, inner, rng, k)
    mesh = builder.build()
    # Road frame -> ego frame: the ego stands at (0, ego_v) heading along the road with a small yaw.
    ego_yaw = float(rng.normal(0.0, 0.03))
    c, s = np.cos(ego_yaw), np.sin(ego_yaw)
    to_ego = np.array([[c, s], [-s, c]])  # rotation by -ego_yaw
    shift = np.array([0.0, lay.ego_v])
    v = mesh["vertices"].astype(np.float64)
    v[:, :2] = (v[:, :2] - shift) @ to_ego.T
    mesh["vertices"] = v.astype(np.float32)
    boxes = boxes.copy()
    boxes[:, :2] = (boxes[:, :2] - shift) @ to_ego.T
    boxes[:, 6] = (boxes[:, 6] - ego_yaw + np.pi) % (2 * np.pi) - np.pi
    points, object_id = scan(mesh, lidar, rng)
    frame = make_labels(points, boxes, labels, object_id)
    frame.update(points=points,
                 frame_id=frame_id if frame_id is not None else f"seed{int(seed):010d}", seed=int(seed))
    return frame


__all__ = ["LidarConfig", "SceneConfig", "simulate_frame"]
