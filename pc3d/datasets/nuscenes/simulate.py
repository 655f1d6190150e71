"""nuScenes-like scenes from pc3d's LiDAR simulator: a static street, a driving ego, moving objects.

The simulator (``pc3d.datasets.simulator``) makes single frames; a nuScenes scene needs a time
sequence. Here one street is built once (``scene`` module: layout, ground, sidewalks, buildings,
furniture) and objects are placed once (``traffic``); then every scan time ``t`` re-simulates a sweep:
objects move at constant velocity (their shapes rebuilt from a per-object seed, so they stay the same
object), the ego drives along the road with a slowly turning heading, and the street + objects mesh is
moved into the scan's sensor frame and ray-cast with ``sensor.scan``.

Frames (keyframes every 0.5 s, ``sweeps_between`` scans between them and before the first keyframe) are
returned in ``writer.write_nuscenes``'s input format: points ``[x, y, z, intensity 0-255, ring]`` in the
LiDAR frame (``lidar2ego`` mounting), keyframe annotations as global boxes. The global frame is the
simulator's road frame rotated by ``global_yaw`` and shifted by ``global_origin`` (map-like coordinates).
Simulator classes map to nuScenes categories: car/suv/van -> vehicle.car, truck -> vehicle.truck, bus
-> vehicle.bus.rigid, pedestrian -> human.pedestrian.adult, cyclist -> vehicle.bicycle (with rider).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .writer import DEFAULT_LIDAR2EGO, rigid

KEYFRAME_US = 500_000
CATEGORY = {"car": "vehicle.car", "suv": "vehicle.car", "van": "vehicle.car", "truck": "vehicle.truck",
            "bus": "vehicle.bus.rigid", "pedestrian": "human.pedestrian.adult", "cyclist": "vehicle.bicycle"}


@dataclass(frozen=True)
class SequenceConfig:
    """Scene length, scan rate and content. ``counts`` = (vehicles, pedestrians, cyclists) placed."""
    keyframes: int = 3
    sweeps_between: int = 2
    counts: tuple = (12, 6, 3)
    ego_speed: tuple = (4.0, 10.0)  # m/s, drawn uniformly
    global_origin: tuple = (400.0, 1100.0, 0.0)
    global_yaw: float = 0.6


def _velocities(lay, boxes, labels, rng):
    """(M, 2) road-frame velocities: some vehicles on the road drive, pedestrians walk, cyclists ride."""
    from ..simulator.objects import CYCLIST, PEDESTRIAN

    on_road = lay.level(boxes[:, 0], boxes[:, 1]) == 0
    speed = np.where(on_road & (rng.random(len(boxes)) < 0.6), rng.uniform(3.0, 10.0, len(boxes)), 0.0)
    speed = np.where(labels == PEDESTRIAN, rng.uniform(0.0, 1.5, len(boxes)) * (rng.random(len(boxes)) < 0.6), speed)
    speed = np.where(labels == CYCLIST, rng.uniform(2.0, 5.0, len(boxes)), speed)
    return speed[:, None] * np.stack([np.cos(boxes[:, 6]), np.sin(boxes[:, 6])], 1)


def _attribute(kind, speed):
    if kind == "pedestrian":
        return "pedestrian.moving" if speed > 0.2 else "pedestrian.standing"
    if kind == "cyclist":
        return "cycle.with_rider"
    return "vehicle.moving" if speed > 0.2 else "vehicle.parked"


def _object_mesh(boxes, labels, kinds, seed):
    """Mesh of the objects at ``boxes`` (M, 7) road frame; object k's shape comes from seed (seed, k)."""
    from ..simulator import objects
    from ..simulator.meshes import MeshBuilder

    builder = MeshBuilder()
    for k, (box, cls, kind) in enumerate(zip(boxes, labels, kinds)):
        rng = np.random.default_rng([seed, 1, k])
        inner = box.copy()
        inner[3:6] -= (0.1, 0.1, 0.04)  # shapes sit a few cm inside the label box, as in simulate_frame
        inner[2] -= 0.02
        if cls == objects.VEHICLE:
            objects.add_vehicle(builder, inner, kind, rng, k)
        elif cls == objects.PEDESTRIAN:
            objects.add_pedestrian(builder, inner, rng, k)
        else:
            objects.add_cyclist(builder, inner, rng, k)
    return builder.build() if len(boxes) else None


def _merge(a, b):
    if b is None:
        return a
    out = {k: np.concatenate([a[k], b[k]]) for k in a if k != "faces"}
    out["faces"] = np.concatenate([a["faces"], b["faces"] + np.uint32(len(a["vertices"]))])
    return out


def _ring(points_s, cfg):
    """(N,) beam index of points in the scan frame (sensor at (0, 0, height)): range noise moves a return
    along its ray, so its elevation is the beam's; the nearest beam elevation is the ring."""
    from ..simulator.sensor import beam_elevations

    d = points_s[:, :3].astype(np.float64) - (0.0, 0.0, cfg.height)
    el = np.arctan2(d[:, 2], np.hypot(d[:, 0], d[:, 1]))
    beams = beam_elevations(cfg)
    return np.abs(el[:, None] - beams[None]).argmin(1)


def simulate_sequence(seed: int, name: str, config: SequenceConfig = SequenceConfig(), lidar=None,
                      lidar2ego: np.ndarray = DEFAULT_LIDAR2EGO, t0_us: int = 1_600_000_000_000_000) -> dict:
    """One simulated scene in ``write_nuscenes``'s input format, plus ``truth``.

    ``truth`` (per frame): ``ego2global`` (4, 4), ``boxes`` (M, 7) global, ``velocity`` (M, 2) global
    (constant over the scene), ``kinds`` list of simulator kinds: what the loader must give back.
    """
    from ..simulator import scene as world
    from ..simulator import traffic
    from ..simulator.meshes import MeshBuilder
    from ..simulator.sensor import LidarConfig, scan

    lidar = lidar or LidarConfig(num_beams=32, azimuth_steps=1024)
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
    lay = world.sample_layout(rng)
    builder, foot = MeshBuilder(), world.Footprints()
    world.add_ground(builder, lay, rng)
    world.add_sidewalks(builder, lay, rng)
    world.add_buildings(builder, foot, lay, rng)
    world.add_street_furniture(builder, foot, lay, rng)
    static = builder.build()
    n_frames = config.keyframes * (config.sweeps_between + 1)
    dt_us = KEYFRAME_US // (config.sweeps_between + 1)
    duration = (n_frames - 1) * dt_us * 1e-6
    speed = float(rng.uniform(*config.ego_speed))
    yaw_rate = float(rng.uniform(-0.05, 0.05))
    # Keep the ego's whole path free of objects (it drives along its lane, +u).
    foot.add(np.array([speed * duration / 2, lay.ego_v, 0, speed * duration + 6.0, 2.6, 1, 0]))
    boxes, labels, kinds = traffic.place_objects(lay, foot, rng, config.counts)
    vel = _velocities(lay, boxes, labels, rng)
    road2global = rigid(config.global_origin, yaw=config.global_yaw)
    g_rot = road2global[:2, :2]
    l2e = np.asarray(lidar2ego, dtype=np.float64)
    frames, truth = [], []
    for j in range(n_frames):
        t = j * dt_us * 1e-6
        yaw = yaw_rate * t
        u = speed * t * np.cos(yaw / 2)  # constant speed and yaw rate, midpoint heading
        v = lay.ego_v + speed * t * np.sin(yaw / 2)
        z = float(lay.ground(np.array([u]), np.array([v]))[0])
        ego2road = rigid((u, v, z), yaw=yaw)
        lidar2road = ego2road @ l2e
        moved = boxes.copy()
        moved[:, :2] += vel * t
        mesh = _merge(static, _object_mesh(moved, labels, kinds, seed))
        # Scan frame: the LiDAR frame with the sensor lifted to (0, 0, height), where sensor.scan casts from.
        r, o = lidar2road[:3, :3], lidar2road[:3, 3]
        verts = (mesh["vertices"].astype(np.float64) - o) @ r
        verts[:, 2] += lidar.height
        mesh["vertices"] = verts.astype(np.float32)
        pts_s, _ = scan(mesh, lidar, np.random.default_rng([seed, 2, j]))
        pts = np.zeros((len(pts_s), 5), np.float32)
        pts[:, :3] = pts_s[:, :3] - np.float32((0.0, 0.0, lidar.height))
        pts[:, 3] = np.round(pts_s[:, 3] * 255.0)
        pts[:, 4] = _ring(pts_s, lidar)
        key = j % (config.sweeps_between + 1) == config.sweeps_between
        gboxes = moved.copy()
        gboxes[:, :3] = moved[:, :3] @ road2global[:3, :3].T + road2global[:3, 3]
        gboxes[:, 6] = np.mod(moved[:, 6] + config.global_yaw + np.pi, 2 * np.pi) - np.pi
        frame = {"timestamp": t0_us + j * dt_us, "ego2global": road2global @ ego2road, "is_key_frame": key,
                 "points": pts}
        if key:
            frame["annotations"] = {
                "boxes": gboxes, "instance_ids": list(range(len(boxes))), "categories": [CATEGORY[k] for k in kinds],
                "attributes": [_attribute(k, s) for k, s in zip(kinds, np.hypot(vel[:, 0], vel[:, 1]))]}
        frames.append(frame)
        truth.append({"ego2global": frame["ego2global"], "boxes": gboxes, "velocity": vel @ g_rot.T, "kinds": kinds})
    return {"name": name, "frames": frames, "truth": truth}


def write_simulated_dataset(root, version: str = "v1.0-mini", train_scenes: int = 2, val_scenes: int = 1, seed: int = 0,
                            config: SequenceConfig = SequenceConfig(), lidar=None, progress: bool = True):
    """Simulates scenes named after official scenes of ``version``'s train and val splits (so that
    ``create_data.py nuscenes`` splits them as it would the real data) and writes them with
    ``write_nuscenes``. Scene ``i`` uses seed ``(seed, i)``. Returns the table folder."""
    from tqdm import tqdm

    from .splits import VERSION_SPLITS, official_splits
    from .writer import write_nuscenes

    splits = VERSION_SPLITS[version]
    wanted = [(splits[0], train_scenes)] + ([(splits[1], val_scenes)] if len(splits) > 1 else [])
    names = []
    for split, n in wanted:
        pool = sorted(official_splits()[split])
        if n > len(pool):
            raise ValueError(f"{version} split {split!r} has {len(pool)} scenes; {n} were asked for")
        names += pool[:n]
    scenes = []
    for i, name in enumerate(tqdm(names, desc="simulating nuScenes scenes", unit="scene", disable=not progress)):
        scene_seed = int(np.random.SeedSequence([int(seed), i]).generate_state(1)[0])
        scenes.append(simulate_sequence(scene_seed, name, config, lidar, t0_us=1_600_000_000_000_000 + i * 10 ** 9))
    return write_nuscenes(root, scenes, version=version)


def add_parser(subparsers):
    """Registers ``create_data.py nuscenes-sim``: write a simulated dataset in the nuScenes layout."""
    p = subparsers.add_parser("nuscenes-sim", help="simulate a small dataset in the nuScenes layout",
                              description=write_simulated_dataset.__doc__.split(".")[0])
    p.add_argument("--out", default="data/nuscenes_sim", help="dataset root to write")
    p.add_argument("--version", default="v1.0-mini", help="v1.0-mini or v1.0-trainval (scene names, table folder)")
    p.add_argument("--train-scenes", type=int, default=2)
    p.add_argument("--val-scenes", type=int, default=1)
    p.add_argument("--keyframes", type=int, default=4, help="keyframes per scene (every 0.5 s)")
    p.add_argument("--sweeps-between", type=int, default=9, help="scans between keyframes (9 = 20 Hz as nuScenes)")
    p.add_argument("--seed", type=int, default=0)

    def run(args):
        cfg = SequenceConfig(keyframes=args.keyframes, sweeps_between=args.sweeps_between)
        path = write_simulated_dataset(args.out, args.version, args.train_scenes, args.val_scenes, args.seed, cfg)
        print(f"wrote {path}; next: create_data.py nuscenes --root {args.out} --version {args.version}")

    p.set_defaults(func=run)
    return p
