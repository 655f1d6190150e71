"""The simulator's scans as Waymo v2 range images, so every Waymo code path runs without a download.

The simulator (``pc3d.datasets.simulator``) casts ``num_beams x azimuth_steps`` rays from
(0, 0, ``height``): beam ``b`` at elevation ``beam_elevations(cfg)[b]`` (ascending), ray ``k`` at
azimuth ``offset + k * 2 pi / azimuth_steps`` with a random per-frame ``offset`` in [0, one step).
Each kept return lies exactly on its ray (range noise is along the ray), so its (beam, ray) is
recovered from its direction and the range image is that ray pattern:

- H = num_beams with explicit ``beam_inclination.values`` = the beam elevations, W = azimuth_steps,
  extrinsic = translation (0, 0, height);
- Waymo's columns sit at fixed vehicle-frame azimuths ``pi - (c + 0.5) * 2 pi / W``; the simulator's
  rays are those turned by ``delta`` in [0, one step) (its random phase). The TOP lidar's per-pixel
  pose (``lidar_pose``) carries that turn: pixel pose = world_from_vehicle @ Rz(delta), exactly what a
  real per-pixel pose expresses (the vehicle's pose when the beam fired). The reader's inverse
  conversion therefore returns every simulated point to within float32 rounding.
"""
import numpy as np

from . import schema as S
from .range_image import points_to_range_image, rotation_from_rpy, rpy_from_rotation

ANGLE_TOLERANCE = 1e-4  # rad: a recovered direction must sit this close to a simulator ray


def _rz(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def top_calibration(cfg):
    """``schema.LidarCalibration`` of the simulator's LiDAR (``LidarConfig``) as Waymo's TOP laser."""
    from ..simulator.sensor import beam_elevations

    el = beam_elevations(cfg)
    ext = np.eye(4)
    ext[2, 3] = cfg.height
    return S.LidarCalibration(S.TOP, ext, float(el[0]), float(el[-1]), el.astype(np.float64))


def scan_to_range_image(points, cfg):
    """Places a simulated scan in its range image.

    Args:
        points: (N, 5) float32 [x, y, z, intensity, elongation] from ``simulate_frame`` (ego frame).
        cfg: the ``LidarConfig`` that produced them.
    Returns:
        image: (H, W, 4) float32 [range, intensity, elongation, nlz = -1]; empty pixels range -1.
        delta: float, the scan's azimuth phase relative to Waymo's columns (radians, [0, 2 pi / W)).
        pixel_index: (N, 2) int64 [row, column] of each input point.
    """
    pts = np.asarray(points, dtype=np.float64)
    cal = top_calibration(cfg)
    w = int(cfg.azimuth_steps)
    step = 2 * np.pi / w
    d = pts[:, :3] - cal.extrinsic[:3, 3]
    az = np.arctan2(d[:, 1], d[:, 0])
    # The common phase of all rays: a circular mean of every point's azimuth modulo one step.
    phase = np.angle(np.mean(np.exp(1j * (az % step) * (2 * np.pi / step)))) * step / (2 * np.pi) if len(pts) else 0.0
    delta = float((phase - np.pi + 0.5 * step) % step)
    incl = cal.beam_inclination_values[::-1]
    q = pts[:, :3] @ _rz(-delta).T  # undo the phase: rays now point at Waymo's column centres
    feats = np.concatenate([pts[:, 3:5], -np.ones((len(pts), 1))], 1)
    image, pix = points_to_range_image(q, incl, cal.extrinsic, w, feats)
    # Check the recovery is exact (a changed simulator ray pattern must fail loudly, not blur).
    qs = q - cal.extrinsic[:3, 3]
    inc_err = np.abs(np.arctan2(qs[:, 2], np.linalg.norm(qs[:, :2], axis=1)) - incl[pix[:, 0]])
    col_az = np.pi - (pix[:, 1] + 0.5) * step
    az_err = np.abs((np.arctan2(qs[:, 1], qs[:, 0]) - col_az + np.pi) % (2 * np.pi) - np.pi)
    if len(pts) and max(inc_err.max(), az_err.max()) > ANGLE_TOLERANCE:
        raise ValueError(f"simulated points are off the ray pattern (inclination error {inc_err.max():.2e}, "
                         f"azimuth error {az_err.max():.2e} rad): LidarConfig does not match the scan")
    if len(np.unique(pix[:, 0] * w + pix[:, 1])) != len(pts):
        raise ValueError("two simulated points fell in one range-image pixel: not one return per ray")
    return image, delta, pix


def labels_from_frame(frame):
    """``schema.BoxLabels`` of a simulated frame: its ground truth plus its zero-point boxes."""
    boxes = np.concatenate([frame["gt_boxes"], frame["empty_boxes"]]).astype(np.float64)
    labels = np.concatenate([frame["gt_labels"], frame["empty_labels"]]).astype(np.int64)
    m, k = len(frame["gt_boxes"]), len(frame["empty_boxes"])
    npts = np.concatenate([frame["gt_num_points"], np.zeros(k, np.int64)])
    diff = np.concatenate([frame["gt_difficulty"], np.full(k, 2, np.int64)])
    return S.BoxLabels(boxes, S.LABEL_TO_TYPE[labels], npts, diff, [f"obj{i:04d}" for i in range(m + k)],
                       num_top_points=npts)


def frame_record(frame, cfg, segment, timestamp_micros, world_from_vehicle):
    """A simulated frame (``simulate_frame`` dict) -> ``schema.FrameRecord`` with the TOP scan.

    Args:
        world_from_vehicle: (4, 4) the frame's vehicle pose (any rigid transform).
    Returns:
        record, pixel_index (N, 2) int64 of the frame's points in the range image.
    """
    image, delta, pix = scan_to_range_image(frame["points"], cfg)
    fp = np.asarray(world_from_vehicle, dtype=np.float64)
    h, w = image.shape[:2]
    pose = np.empty((h, w, 6), np.float32)
    pose[..., :3] = rpy_from_rotation(fp[:3, :3] @ _rz(delta))
    pose[..., 3:] = fp[:3, 3]
    scan = S.LidarScan(S.TOP, image, None, pose)
    return S.FrameRecord(segment, int(timestamp_micros), fp, [scan], labels_from_frame(frame)), pix


def vehicle_pose(index, seed=0):
    """(4, 4) a plausible world_from_vehicle for frame ``index`` of a segment: a car driving along a
    gentle curve far from the world origin (so float32 pose storage is exercised like real data)."""
    rng = np.random.default_rng(seed)
    x0, y0, yaw0 = rng.uniform(-2000, 2000), rng.uniform(-2000, 2000), rng.uniform(-np.pi, np.pi)
    yaw = yaw0 + 0.01 * index
    t = np.array([x0 + index * np.cos(yaw), y0 + index * np.sin(yaw), 10.0 + 0.01 * index])
    m = np.eye(4)
    m[:3, :3] = rotation_from_rpy(np.array([0.002, -0.003, yaw]))
    m[:3, 3] = t
    return m


def simulate_segment(root, split, segment, seeds, cfg=None, scene=None, start_micros=1_500_000_000_000_000):
    """Simulates one frame per seed and writes them as one v2 segment.

    Frames of a simulated segment are independent scenes (the simulator has no sequences); they are
    100 ms apart with ``vehicle_pose`` poses.
    Returns:
        the simulated frame dicts (with ``pixel_index`` added) in timestamp order.
    """
    from ..simulator import LidarConfig, SceneConfig, simulate_frame
    from .v2_writer import write_segment

    cfg = cfg or LidarConfig()
    scene = scene or SceneConfig()
    frames, records = [], []
    for i, seed in enumerate(seeds):
        f = simulate_frame(int(seed), frame_id=f"{segment}_{i:03d}", lidar=cfg, scene=scene)
        rec, pix = frame_record(f, cfg, segment, start_micros + 100_000 * i, vehicle_pose(i, int(seeds[0])))
        f["pixel_index"] = pix
        frames.append(f)
        records.append(rec)
    write_segment(root, split, [top_calibration(cfg)], records)
    return frames
