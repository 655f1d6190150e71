"""Sparse-transformer detectors at paper scale: CPU inference latency per 150k-point frame and peak memory.

For each Waymo config (FlatFormer, DSVT-P, DSVT-V, ScatterFormer) two cases: the 3D backbone alone
(voxels encoded once, untimed) and the whole detector (points in, boxes out: voxelize, encode, backbone,
BEV, 2D backbone, neck, head, decode + NMS). Weights are random (latency does not depend on them, except
NMS, which sees at most ``pre_max_size`` boxes). Target: the FlatFormer detector under 0.5 s per frame
on 2 cores (``tools/benchmark.py --suite models --threads 2``). Each detector row also splits its time into
stages (``stage_ms``, the median of each stage over the timed runs, and ``stage_share``): voxelize+encode,
backbone3d, bev+2d (scatter, 2D backbone, neck), head+decode+nms.
Indoor: the TR3D detector of both ScanNet configs on one simulated room (points in, boxes out).
"""
from pathlib import Path

from pc3d.benchmark.harness import Case

SUITE = "models"
NUM_POINTS = 150_000
CONFIGS = ("flatformer_waymo", "dsvt_pillar_waymo", "dsvt_voxel_waymo", "scatterformer_waymo")
CONFIG_ROOT = Path(__file__).resolve().parents[2] / "configs"


def config_path(name: str) -> Path:
    """``configs/<model>/<name>.py`` of a config name such as ``dsvt_pillar_waymo`` (model = its first word)."""
    return CONFIG_ROOT / name.split("_")[0] / f"{name}.py"


def frame_points(num_points: int = NUM_POINTS, seed: int = 0):
    """(num_points, 1 + 5) float32 [b=0, x, y, z, intensity, elongation]: a simulated Waymo-like frame,
    subsampled or tiled (with 1 cm jitter) to exactly ``num_points``."""
    import numpy as np

    from pc3d.datasets.simulator import simulate_frame

    return resize_frame(np.asarray(simulate_frame(seed)["points"], dtype=np.float32), num_points, seed)


def resize_frame(pts, num_points: int = NUM_POINTS, seed: int = 0):
    """(N, >= 5) float32 numpy points -> (num_points, 1 + 5) float32 tensor [b=0, x, y, z, f0, f1],
    subsampled or tiled (with 1 cm jitter) to exactly ``num_points``."""
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    if pts.shape[0] >= num_points:
        pts = pts[rng.choice(pts.shape[0], num_points, replace=False)]
    else:
        extra = pts[rng.integers(0, pts.shape[0], num_points - pts.shape[0])].copy()
        extra[:, :3] += rng.normal(0, 0.01, (extra.shape[0], 3)).astype(np.float32)
        pts = np.concatenate([pts, extra])
    return torch.cat([torch.zeros(num_points, 1), torch.from_numpy(pts[:, :5])], dim=1)


def backbone_call(model, voxels):
    """Zero-argument inference of ``model``'s 3D backbone on encoded ``voxels`` -> (V', C) features."""
    import torch

    def run():
        with torch.no_grad():
            return model.backbone3d(voxels).feats
    return run


def detector_call(model, points):
    """Zero-argument points-to-boxes inference of ``model`` on one frame ``points`` (N, 1 + 5)."""
    import torch

    def run():
        with torch.no_grad():
            return model(dict(points=points, batch_size=1), [{}], mode="predict")
    return run


STAGES = ("voxelize+encode", "backbone3d", "bev+2d", "head+decode+nms")


def staged_detector_call(model, points, extra):
    """:func:`detector_call` run stage by stage (the same computation as ``CenterPoint.forward`` in 'predict'
    mode); after every call ``extra['stage_ms']`` holds each stage's median time (ms) over its calls so far
    (warm-up included) and ``extra['stage_share']`` its share of their sum."""
    import statistics
    import time

    import torch

    times = {name: [] for name in STAGES}

    def run():
        with torch.no_grad():
            marks = [time.perf_counter()]
            voxels = model.voxel_encoder(model.voxelizer(points, 1))
            marks.append(time.perf_counter())
            if model.backbone3d is not None:
                voxels = model.backbone3d(voxels)
            marks.append(time.perf_counter())
            bev = model.neck(model.backbone2d(model.bev(voxels)))
            marks.append(time.perf_counter())
            result = model.head.predict(model.head(bev))
            marks.append(time.perf_counter())
        for name, t0, t1 in zip(STAGES, marks, marks[1:]):
            times[name].append((t1 - t0) * 1000.0)
        medians = {name: statistics.median(v) for name, v in times.items()}
        total = sum(medians.values())
        extra["stage_ms"] = {name: round(v, 1) for name, v in medians.items()}
        extra["stage_share"] = {name: round(v / total, 3) for name, v in medians.items()}
        return result
    return run


def cases():
    import torch

    from pc3d.apis import init_model

    points = frame_points()
    for name in CONFIGS:
        # BatchNorms folded into the convolutions, as a deployment would run it (init_model's fuse_conv_bn).
        model = init_model(str(config_path(name)), fuse_conv_bn=True)
        with torch.no_grad():
            voxels = model.voxel_encoder(model.voxelizer(points, 1))
        extra = dict(points=NUM_POINTS, voxels=int(voxels.coords.shape[0]))

        kind = type(model.backbone3d).__name__
        yield Case(suite=SUITE, name=f"{name} backbone3d", impl_name=kind, impl=backbone_call(model, voxels),
                   repeats=3, warmup=1, extra=extra)
        detector_extra = dict(extra, target_ms=500.0) if name == "flatformer_waymo" else dict(extra)
        yield Case(suite=SUITE, name=f"{name} detector", impl_name=f"CenterPoint+{kind}",
                   impl=staged_detector_call(model, points, detector_extra), repeats=3, warmup=1,
                   extra=detector_extra)

    # Indoor: TR3D on one simulated ScanNet-format room (every point, colour 0..1), the CPU simulated-room
    # config and the paper's ScanNet config (1 cm voxels), random weights, NMS on the 1000 best voxels.
    room = indoor_room_points()
    for name in INDOOR_CONFIGS:
        model = init_model(str(CONFIG_ROOT / "scannet" / f"{name}.py"))
        yield Case(suite=SUITE, name=f"{name} detector", impl_name="TR3D", impl=detector_call(model, room),
                   repeats=3, warmup=1, extra=dict(points=int(room.shape[0])))


INDOOR_CONFIGS = ("tr3d_simrooms", "tr3d_scannet")


def indoor_room_points(seed: int = 3):
    """(N, 1 + 6) float32 [b=0, x, y, z, r, g, b] of one simulated room (aligned frame, colour 0..1)."""
    import numpy as np
    import torch

    from pc3d.datasets.scannet.sim_scan import simulate_room

    room = simulate_room(seed)
    pts = np.concatenate([room["xyz"], np.asarray(room["rgb"], np.float64) / 255.0], 1).astype(np.float32)
    return torch.cat([torch.zeros(len(pts), 1), torch.from_numpy(pts)], 1)
