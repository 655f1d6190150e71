"""The built-in LiDAR simulator: determinism, sensor geometry, labels (points per box, difficulty)."""
import time

import numpy as np
import pytest

pytest.importorskip("open3d", reason="open3d (the simulator's ray caster) is not installed")

from pc3d.datasets.box_utils import points_in_boxes_mask  # noqa: E402
from pc3d.datasets.simulator import SceneConfig, simulate_frame  # noqa: E402
from pc3d.datasets.simulator.labels import difficulty_from_points  # noqa: E402
from pc3d.datasets.simulator.sensor import LidarConfig, beam_elevations, ray_directions  # noqa: E402

ARRAYS = ("points", "point_object_id", "gt_boxes", "gt_labels", "gt_num_points", "gt_difficulty",
          "empty_boxes", "empty_labels")


@pytest.fixture(scope="module")
def frame():
    return simulate_frame(7)


def dense_counts(points, boxes, chunk=20000):
    """Points per box with the plain dense N x M test (independent of the simulator's grid search)."""
    counts = np.zeros(len(boxes), dtype=np.int64)
    for i in range(0, len(points), chunk):
        counts += points_in_boxes_mask(points[i:i + chunk], boxes).sum(0)
    return counts


def test_same_seed_is_bit_identical(frame):
    again = simulate_frame(7)
    for key in ARRAYS:
        assert again[key].dtype == frame[key].dtype, key
        assert np.array_equal(again[key], frame[key]), key
    assert again["frame_id"] == frame["frame_id"]


def test_different_seed_differs(frame):
    other = simulate_frame(8)
    assert other["points"].shape != frame["points"].shape or not np.array_equal(other["points"], frame["points"])
    assert not np.array_equal(other["gt_boxes"][:3], frame["gt_boxes"][:3])


def test_bad_seed_is_rejected():
    with pytest.raises(ValueError, match="seed"):
        simulate_frame(-1)
    with pytest.raises(ValueError, match="seed"):
        simulate_frame(1.5)


def test_beam_geometry_is_waymo_like():
    cfg = LidarConfig()
    el = np.rad2deg(beam_elevations(cfg))
    assert el.shape == (64,)
    assert np.all(np.diff(el) > 0)
    assert el[0] == pytest.approx(-17.6) and el[-1] == pytest.approx(2.4)
    gaps = np.diff(el)
    assert gaps[-1] < gaps[0]  # denser near the horizon
    d = ray_directions(cfg, 0.0)
    assert d.shape == (64, 2650, 3)
    np.testing.assert_allclose(np.linalg.norm(d, axis=-1), 1.0, atol=1e-12)


def test_points_lie_on_the_beams_within_max_range(frame):
    cfg = LidarConfig()
    p = frame["points"]
    assert p.dtype == np.float32 and p.ndim == 2 and p.shape[1] == 5
    assert 80_000 < len(p) < 64 * 2650
    ray = p[:, :3].astype(np.float64) - [0.0, 0.0, cfg.height]
    rng_ = np.linalg.norm(ray, axis=1)
    assert rng_.max() <= cfg.max_range + 1e-3
    assert rng_.max() > 60.0  # the world reaches beyond the typical detection range
    elev = np.arcsin(ray[:, 2] / rng_)
    beams = beam_elevations(cfg)
    nearest = np.abs(elev[:, None] - beams[None]).min(1)  # range noise moves points along their ray only
    assert nearest.max() < 1e-4
    used = np.unique(np.abs(elev[:, None] - beams[None]).argmin(1))
    assert len(used) >= 60  # almost every beam returns something (the top ones see buildings)
    az = np.arctan2(ray[:, 1], ray[:, 0])
    assert len(np.unique(np.round(az / (2 * np.pi / 2650)))) > 2000
    assert (p[:, 3] >= 0).all() and (p[:, 3] < 1).all() and (p[:, 4] >= 0).all() and (p[:, 4] < 1).all()


def test_ground_is_near_zero_under_the_sensor(frame):
    p = frame["points"]
    near = np.hypot(p[:, 0], p[:, 1]) < 12
    low = p[near & (p[:, 2] < 0.5), 2]
    assert len(low) > 1000
    assert abs(np.median(low)) < 0.15


def test_object_points_are_inside_their_box(frame):
    p, pid, boxes = frame["points"], frame["point_object_id"], frame["gt_boxes"]
    assert pid.shape == (len(p),) and pid.max() < len(boxes)
    hits = pid >= 0
    own = points_in_boxes_mask(p[hits], boxes)[np.arange(hits.sum()), pid[hits]]
    assert own.mean() >= 0.99  # only range noise at far range pushes a few out
    for k in np.unique(pid[hits]):
        near = points_in_boxes_mask(p[pid == k], boxes[k:k + 1], margin=0.12)[:, 0]  # ~4 sigma at 75 m
        assert near.all(), f"box {k}: a hit lies more than 0.12 m outside its box"


def test_num_points_and_difficulty(frame):
    boxes, n = frame["gt_boxes"], frame["gt_num_points"]
    assert np.array_equal(n, dense_counts(frame["points"], boxes))
    assert (n >= 1).all()
    assert np.array_equal(frame["gt_difficulty"], np.where(n <= 5, 2, 1))
    assert np.array_equal(difficulty_from_points([0, 1, 5, 6, 100]), [2, 2, 2, 1, 1])


def test_zero_point_boxes_are_separated(frame):
    empty = frame["empty_boxes"]
    assert empty.dtype == np.float32 and empty.shape[1:] == (7,)
    assert len(frame["empty_labels"]) == len(empty)
    if len(empty):
        assert (dense_counts(frame["points"], empty) == 0).all()


def test_labels_are_realistic(frame):
    boxes, labels = frame["gt_boxes"], frame["gt_labels"]
    total = np.bincount(np.concatenate([labels, frame["empty_labels"]]), minlength=3)
    cfg = SceneConfig()
    assert total[0] <= cfg.vehicles[1] and total[1] <= cfg.pedestrians[1] and total[2] <= cfg.cyclists[1]
    assert total[0] >= 10  # placement may give up on a few, not on most
    assert set(np.unique(labels)) <= {0, 1, 2}
    assert (boxes[:, 6] >= -np.pi).all() and (boxes[:, 6] < np.pi).all()
    veh, ped, cyc = boxes[labels == 0], boxes[labels == 1], boxes[labels == 2]
    assert ((veh[:, 3] > 3.0) & (veh[:, 3] < 15) & (veh[:, 4] > 1.4) & (veh[:, 5] > 1.2)).all()
    assert ((ped[:, 3] < 1.3) & (ped[:, 5] > 1.4) & (ped[:, 5] < 2.0)).all()
    assert ((cyc[:, 3] > 1.5) & (cyc[:, 3] < 2.1) & (cyc[:, 4] < 1.0)).all()
    # Boxes rest on the terrain (grade <= 2.8 %, kerbs <= 0.2 m): bottoms stay near z = 0.
    bottom = boxes[:, 2] - boxes[:, 5] / 2
    assert (np.abs(bottom) < 0.3 + 0.03 * np.hypot(boxes[:, 0], boxes[:, 1])).all()
    # Boxes never intersect each other in BEV.
    from pc3d.datasets.box_utils import bev_overlap_matrix

    ov = bev_overlap_matrix(boxes, boxes)
    np.fill_diagonal(ov, False)
    assert not ov.any()


def test_frame_takes_under_two_seconds(frame):
    t0 = time.perf_counter()
    simulate_frame(11)
    assert time.perf_counter() - t0 < 2.0
