"""Waymo loaders: range-image geometry, v2 parquet and OpenPCDet layouts, simulator round trip,
create_data conversion, the Waymo metric on loaded GT, and bad input.

Expected points are computed here from the official conventions with explicit per-pixel matrices
(independent of ``range_image.py``'s vectorised code): row 0 = highest beam, column c at sensor azimuth
``pi - (c + 0.5) 2 pi / W - yaw(extrinsic)``, per-pixel pose ``R = Rz(yaw) Ry(pitch) Rx(roll)``.
"""
import argparse
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow", reason="pyarrow (runtime optional dependency) is not installed")
import pyarrow.parquet as pq  # noqa: E402

from pc3d.datasets.waymo import WaymoDataset  # noqa: E402
from pc3d.datasets.waymo import schema as S  # noqa: E402
from pc3d.datasets.waymo.range_image import (points_to_range_image, rotation_from_rpy,  # noqa: E402
                                              row_inclinations)
from pc3d.datasets.waymo.v2_writer import write_segment  # noqa: E402

WT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- reference geometry (explicit, per pixel)
def rx(a):
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def ry(a):
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def rz(a):
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def transform(rot, t):
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = rot, t
    return m


def ref_points(image, rows_incl, ext, pose=None, frame_pose=None):
    """(N, 6) expected [x, y, z, intensity, elongation, nlz] in row-major pixel order."""
    h, w = image.shape[:2]
    yaw = np.arctan2(ext[1, 0], ext[0, 0])
    out = []
    for r in range(h):
        for c in range(w):
            rng_ = float(image[r, c, 0])
            if rng_ <= 0:
                continue
            az = np.pi - (c + 0.5) * 2 * np.pi / w - yaw
            inc = rows_incl[r]
            p = ext @ np.array([rng_ * np.cos(az) * np.cos(inc), rng_ * np.sin(az) * np.cos(inc), rng_ * np.sin(inc), 1])
            if pose is not None:
                ro, pi_, ya, x, y, z = pose[r, c].astype(np.float64)
                p = np.linalg.inv(frame_pose) @ transform(rz(ya) @ ry(pi_) @ rx(ro), [x, y, z]) @ p
            out.append([*p[:3], *image[r, c, 1:4]])
    return np.array(out, dtype=np.float64).reshape(-1, 6)


# ---------------------------------------------------------------- a hand-built 5-laser v2 segment
LASER_SHAPES = {1: (8, 300), 2: (4, 100), 3: (4, 100), 4: (4, 100), 5: (4, 100)}
TYPES = np.array([1, 2, 4, 3, 0, 1, 2])
NUM_POINTS = np.array([50, 3, 20, 10, 5, 0, 9])
DIFFICULTY = np.array([0, 0, 2, 0, 0, 0, 1])
# Expected gt after the loader: sign (3), unknown (0) and the 0-point box dropped.
KEEP = np.array([0, 1, 2, 6])


def calibrations():
    top_incl = np.sort(np.deg2rad([-17.6, -12.0, -8.0, -5.0, -3.0, -1.5, -0.5, 2.4]))  # non-uniform
    cals = [S.LidarCalibration(1, transform(rz(0.1) @ ry(0.01), [1.43, 0.0, 2.18]), top_incl[0], top_incl[-1], top_incl)]
    for laser, yaw in zip((2, 3, 4, 5), (0.0, np.pi / 2, -np.pi / 2, np.pi)):
        cals.append(S.LidarCalibration(laser, transform(rz(yaw) @ ry(-0.05), [1.0 * np.cos(yaw), np.sin(yaw), 0.8]),
                                       np.deg2rad(-90.0), np.deg2rad(30.0), None))
    return cals


def make_frame(segment, ts, rng):
    scans = []
    for laser, (h, w) in LASER_SHAPES.items():
        imgs = []
        for ret, fill in ((1, 0.8), (2, 0.15)):
            img = np.zeros((h, w, 4), np.float32)
            img[..., 0] = np.where(rng.random((h, w)) < fill, rng.uniform(1.0, 75.0, (h, w)), -1.0)
            img[..., 1] = rng.uniform(0, 3000, (h, w))  # Waymo's raw intensity is unbounded
            img[..., 2] = rng.uniform(0, 1.5, (h, w))
            img[..., 3] = np.where(rng.random((h, w)) < 0.1, 1.0, -1.0)
            imgs.append(img)
        pose = None
        if laser == 1:  # the TOP laser's per-pixel pose: the ego turns and moves during the sweep
            fp = frame_pose(ts)
            cols = np.arange(w)[None, :].repeat(h, 0)
            pose = np.zeros((h, w, 6), np.float32)
            pose[..., 0], pose[..., 1] = 0.003, -0.002
            pose[..., 2] = np.arctan2(fp[1, 0], fp[0, 0]) + 0.004 * (cols - w / 2) / w * 10
            pose[..., 3] = fp[0, 3] + 1.5 * (cols - w / 2) / w
            pose[..., 4] = fp[1, 3] - 0.3 * (cols - w / 2) / w
            pose[..., 5] = fp[2, 3]
        scans.append(S.LidarScan(laser, imgs[0], imgs[1], pose))
    m = len(TYPES)
    boxes = np.column_stack([rng.uniform(-50, 50, (m, 3)), rng.uniform(0.5, 5, (m, 3)), rng.uniform(-np.pi, np.pi, m)])
    labels = S.BoxLabels(boxes, TYPES.copy(), NUM_POINTS.copy(), DIFFICULTY.copy(), [f"o{i}" for i in range(m)])
    return S.FrameRecord(segment, ts, frame_pose(ts), scans, labels)


def frame_pose(ts):
    k = (ts % 10_000_000) / 100_000
    return transform(rz(0.7 + 0.01 * k) @ ry(0.002), [812.0 + k, -345.0 + 0.5 * k, 12.0])


def expected_points(frame, cals, returns=(1, 2), drop_nlz=True):
    cal = {c.laser_name: c for c in cals}
    out = []
    for ret in returns:
        for s in frame.scans:
            c = cal[s.laser_name]
            h = s.return1.shape[0]
            if c.beam_inclination_values is not None:
                rows = np.asarray(c.beam_inclination_values)[::-1]
            else:  # uniform pixel centres, highest first
                rows = c.beam_inclination_min + (np.arange(h)[::-1] + 0.5) / h * (c.beam_inclination_max - c.beam_inclination_min)
            img = s.return1 if ret == 1 else s.return2
            pts = ref_points(img, rows, c.extrinsic, s.pixel_pose, frame.world_from_vehicle if s.pixel_pose is not None else None)
            out.append(pts)
    pts = np.concatenate(out)
    return pts[pts[:, 5] < 0] if drop_nlz else pts


@pytest.fixture(scope="module")
def v2_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("waymo_v2")
    rng = np.random.default_rng(7)
    frames = {seg: [make_frame(seg, 1_600_000_000_000_000 + 100_000 * i, rng) for i in range(2)] for seg in ("segA", "segB")}
    for seg, fr in frames.items():
        write_segment(root, "training", calibrations(), fr)
    return root, frames


def test_official_column_names_and_types(v2_root):
    root, _ = v2_root
    sch = pq.read_schema(root / "training" / "lidar" / "segA.parquet")
    assert sch.field("key.laser_name").type == pa.int8()
    assert sch.field("[LiDARComponent].range_image_return1.values").type == pa.list_(pa.float32())
    assert sch.field("[LiDARComponent].range_image_return1.shape").type == pa.list_(pa.int32(), 3)
    cal = pq.read_schema(root / "training" / "lidar_calibration" / "segA.parquet")
    assert cal.field("[LiDARCalibrationComponent].extrinsic.transform").type == pa.list_(pa.float64(), 16)
    box = pq.read_schema(root / "training" / "lidar_box" / "segA.parquet")
    assert box.field("[LiDARBoxComponent].difficulty_level.detection").type == pa.int8()
    assert "[LiDARBoxComponent].box.center.x" in box.names and "key.laser_object_id" in box.names
    assert sorted(p.name for p in (root / "training").iterdir()) == sorted(S.COMPONENTS)


def test_frames_are_separate_row_groups_and_reads_pick_one(v2_root):
    from pc3d.datasets.waymo.v2_reader import _frame_row_groups

    root, frames = v2_root
    pf = pq.ParquetFile(root / "training" / "lidar" / "segB.parquet")
    assert pf.metadata.num_row_groups == 2
    for g, f in enumerate(frames["segB"]):
        assert _frame_row_groups(pf, f.timestamp_micros) == [g]
    assert _frame_row_groups(pf, 5) == []


def test_uniform_inclinations_are_pixel_centres_highest_row_first():
    np.testing.assert_allclose(row_inclinations(4, -0.2, 0.2), [0.15, 0.05, -0.05, -0.15], atol=1e-12)
    np.testing.assert_allclose(row_inclinations(3, values=[-0.3, -0.1, 0.2]), [0.2, -0.1, -0.3])
    with pytest.raises(ValueError, match="3 entries but the range image has 4 rows"):
        row_inclinations(4, values=[-0.3, -0.1, 0.2])


def test_rotation_from_rpy_is_z_y_x():
    rpy = np.array([0.3, -0.2, 1.1])
    np.testing.assert_allclose(rotation_from_rpy(rpy), rz(1.1) @ ry(-0.2) @ rx(0.3), atol=1e-12)


def test_columns_are_fixed_in_the_vehicle_frame():
    # A level sensor turned by any yaw: column c still looks at vehicle azimuth pi - (c + 0.5) 2 pi / W.
    from pc3d.datasets.waymo.range_image import range_image_to_points

    img = np.zeros((1, 4, 4), np.float32)
    img[0, :, 0] = 10.0
    for yaw in (0.0, 0.8, -2.5):
        pts, _ = range_image_to_points(img, [0.0], transform(rz(yaw), [0, 0, 0]))
        np.testing.assert_allclose(np.arctan2(pts[:, 1], pts[:, 0]), [3 * np.pi / 4, np.pi / 4, -np.pi / 4, -3 * np.pi / 4],
                                   atol=1e-6)


def test_v2_points_match_reference_all_lasers_both_returns(v2_root):
    root, frames = v2_root
    ds = WaymoDataset(root, "train", source="v2")  # OpenPCDet's split name maps to the 'training' folder
    assert len(ds) == 4
    for i, frame in enumerate(frames["segA"] + frames["segB"]):
        item = ds[i]
        exp = expected_points(frame, calibrations())
        assert item["points"].dtype == np.float32 and item["points"].shape == (len(exp), 5)
        np.testing.assert_allclose(item["points"][:, :3], exp[:, :3], atol=1e-3, rtol=0)  # within 1 mm
        np.testing.assert_array_equal(item["points"][:, 3:5], exp[:, 3:5].astype(np.float32))  # kept exactly
        assert item["frame_id"] == f"{frame.segment}_{i % 2:03d}"


def test_nlz_points_dropped_and_two_returns_counted(v2_root):
    root, frames = v2_root
    f = frames["segA"][0]
    n = {}
    for returns in ((1,), (1, 2)):
        for drop in (True, False):
            item = WaymoDataset(root, "training", source="v2", returns=returns, drop_nlz=drop)[0]
            n[returns, drop] = len(item["points"])
            assert n[returns, drop] == len(expected_points(f, calibrations(), returns, drop))
    valid2 = sum(int((s.return2[..., 0] > 0).sum()) for s in f.scans)
    nlz = sum(int(((im[..., 0] > 0) & (im[..., 3] > 0)).sum()) for s in f.scans for im in (s.return1, s.return2))
    assert n[(1, 2), False] - n[(1,), False] == valid2 > 0
    assert n[(1, 2), False] - n[(1, 2), True] == nlz > 0


def test_per_pixel_pose_is_applied(v2_root):
    root, frames = v2_root
    f = frames["segA"][1]
    item = WaymoDataset(root, "training", source="v2", returns=(1,), drop_nlz=False)[1]
    top = f.scans[0]
    cal = calibrations()[0]
    rows = cal.beam_inclination_values[::-1]
    with_pose = ref_points(top.return1, rows, cal.extrinsic, top.pixel_pose, f.world_from_vehicle)
    without = ref_points(top.return1, rows, cal.extrinsic)
    got = item["points"][:len(with_pose), :3]
    np.testing.assert_allclose(got, with_pose[:, :3], atol=1e-3, rtol=0)
    assert np.abs(got - without[:, :3]).max() > 0.1  # the pose matters: ignoring it would fail above


def test_boxes_exact_with_types_points_and_difficulty(v2_root):
    root, frames = v2_root
    item = WaymoDataset(root, "training", source="v2")[0]
    lab = frames["segA"][0].labels
    np.testing.assert_array_equal(item["gt_boxes"], lab.boxes[KEEP].astype(np.float32))
    np.testing.assert_array_equal(item["gt_labels"], [0, 1, 2, 1])
    np.testing.assert_array_equal(item["gt_num_points"], [50, 3, 20, 9])
    np.testing.assert_array_equal(item["gt_difficulty"], [1, 2, 2, 1])  # <=5 points or marked 2 -> LEVEL_2


def test_points_to_range_image_round_trip_within_1mm():
    rng = np.random.default_rng(3)
    h, w = 6, 240
    rows = row_inclinations(h, np.deg2rad(-25), np.deg2rad(5))
    ext = transform(rz(-1.2) @ rx(0.02), [0.5, -0.2, 1.8])
    img = np.zeros((h, w, 4), np.float32)
    img[..., 0] = np.where(rng.random((h, w)) < 0.7, rng.uniform(1, 80, (h, w)), -1)
    img[..., 1:3] = rng.random((h, w, 2))
    img[..., 3] = -1
    pts = ref_points(img, rows, ext)
    back, pix = points_to_range_image(pts[:, :3], rows, ext, w, pts[:, 3:])
    valid = img[..., 0] > 0
    np.testing.assert_array_equal(back[..., 0] > 0, valid)
    np.testing.assert_allclose(back[valid], img[valid], atol=1e-3)


# ---------------------------------------------------------------- OpenPCDet layout
def write_openpcdet_by_hand(root, rng):
    """Two frames in OpenPCDet's own structure (as its waymo_utils writes them)."""
    pdir = root / "waymo_processed_data"
    infos = []
    for idx in range(2):
        pts = np.column_stack([rng.uniform(-60, 60, (500, 3)), rng.uniform(0, 2, (500, 2)),
                               np.where(rng.random(500) < 0.2, 1.0, -1.0)]).astype(np.float32)
        (pdir / "segment-1_with_camera_labels").mkdir(parents=True, exist_ok=True)
        np.save(pdir / "segment-1_with_camera_labels" / f"{idx:04d}.npy", pts)
        boxes = rng.uniform(1, 5, (5, 7))
        boxes[:, 6] = rng.uniform(-np.pi, np.pi, 5)
        boxes[0, 6] = 3.5  # outside [-pi, pi): the loader wraps it
        infos.append({
            "point_cloud": {"num_features": 5, "lidar_sequence": "segment-1_with_camera_labels", "sample_idx": idx},
            "frame_id": f"segment-1_with_camera_labels_{idx:03d}", "pose": np.eye(4, dtype=np.float32),
            "num_points_of_each_lidar": [300, 100, 50, 30, 20],
            "annos": {"name": np.array(["Vehicle", "Sign", "Pedestrian", "Cyclist", "Vehicle"]),
                      "difficulty": np.array([0, 0, 0, 2, 0]), "dimensions": boxes[:, 3:6],
                      "location": boxes[:, :3], "heading_angles": boxes[:, 6],
                      "obj_ids": np.array([f"id{k}" for k in range(5)]), "tracking_difficulty": np.zeros(5),
                      "num_points_in_gt": np.array([40, 7, 4, 30, 0]), "gt_boxes_lidar": boxes},
            "_points": pts})
    with open(root / "waymo_infos_train.pkl", "wb") as f:
        pickle.dump([{k: v for k, v in i.items() if k != "_points"} for i in infos], f)
    return infos


def test_openpcdet_layout_read(tmp_path):
    infos = write_openpcdet_by_hand(tmp_path, np.random.default_rng(1))
    ds = WaymoDataset(tmp_path, "train", source="openpcdet")
    assert len(ds) == 2
    for i, info in enumerate(infos):
        item = ds[i]
        pts = info["_points"]
        np.testing.assert_array_equal(item["points"], pts[pts[:, 5] == -1, :5])
        b = info["annos"]["gt_boxes_lidar"][[0, 2, 3]].copy()
        b[0, 6] = 3.5 - 2 * np.pi
        np.testing.assert_allclose(item["gt_boxes"][0], b[0].astype(np.float32), rtol=0, atol=1e-6)
        np.testing.assert_array_equal(item["gt_boxes"][1:], b[1:].astype(np.float32))
        np.testing.assert_array_equal(item["gt_labels"], [0, 1, 2])
        np.testing.assert_array_equal(item["gt_num_points"], [40, 4, 30])
        np.testing.assert_array_equal(item["gt_difficulty"], [1, 2, 2])
        assert item["frame_id"] == info["frame_id"]
    box = dict(type="RangeFilter", point_cloud_range=[-20, -20, -5, 20, 20, 5])
    cut = WaymoDataset(tmp_path, "train", source="openpcdet", pipeline=[box])[0]
    assert 0 < len(cut["points"]) < len(ds[0]["points"]) and np.abs(cut["points"][:, :2]).max() <= 20
    tanh = WaymoDataset(tmp_path, "train", source="openpcdet", tanh_intensity=True)[0]
    np.testing.assert_allclose(tanh["points"][:, 3], np.tanh(ds[0]["points"][:, 3]), rtol=1e-6)


def run_create_data(argv):
    from pc3d.datasets.waymo import convert

    parser = argparse.ArgumentParser()
    convert.add_parser(parser.add_subparsers(dest="dataset"))
    args = parser.parse_args(["waymo", *argv])
    return args.func(args)


def test_create_data_v2_to_openpcdet_equals_direct_v2(v2_root, tmp_path):
    root, _ = v2_root
    written = run_create_data(["--root", str(root), "--out", str(tmp_path)])
    assert list(written) == ["training"] and (tmp_path / "waymo_infos_train.pkl").is_file()
    a, b = WaymoDataset(root, "training", source="v2"), WaymoDataset(tmp_path, "train", source="openpcdet")
    assert len(a) == len(b) == 4
    for i in range(4):
        x, y = a[i], b[i]
        assert x["frame_id"] == y["frame_id"]
        for k in ("points", "gt_boxes", "gt_labels", "gt_num_points", "gt_difficulty"):
            np.testing.assert_array_equal(x[k], y[k])
    # Gathering OpenPCDet's per-sequence infos (as its create_waymo_infos does) gives the same frames.
    for seq in ("segA", "segB"):
        infos = [i for i in pickle.load(open(tmp_path / "waymo_infos_train.pkl", "rb"))
                 if i["point_cloud"]["lidar_sequence"] == seq]
        pickle.dump(infos, open(tmp_path / "waymo_processed_data" / seq / f"{seq}.pkl", "wb"))
    (tmp_path / "ImageSets").mkdir()
    (tmp_path / "ImageSets" / "val.txt").write_text("segB.tfrecord\n")
    run_create_data(["--root", str(tmp_path), "--source", "openpcdet", "--splits", "val"])
    val = WaymoDataset(tmp_path, "val", source="openpcdet")
    assert [val[i]["frame_id"] for i in range(len(val))] == ["segB_000", "segB_001"]
    np.testing.assert_array_equal(val[1]["points"], a[3]["points"])


# ---------------------------------------------------------------- simulator -> v2 -> loader, and the metric
@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    pytest.importorskip("open3d", reason="the simulator needs open3d for ray casting")
    from pc3d.datasets.simulator import LidarConfig, SceneConfig
    from pc3d.datasets.waymo.simulated import simulate_segment

    root = tmp_path_factory.mktemp("waymo_sim")
    cfg = LidarConfig(num_beams=16, azimuth_steps=512)
    frames = simulate_segment(root, "validation", "sim0", [11, 12], cfg,
                              SceneConfig(vehicles=(4, 6), pedestrians=(3, 4), cyclists=(3, 4)))
    return root, frames, cfg


def test_simulated_frames_round_trip(simulated):
    root, frames, cfg = simulated
    ds = WaymoDataset(root, "validation", source="v2")
    assert len(ds) == len(frames)
    for i, f in enumerate(frames):
        item = ds[i]
        order = np.argsort(f["pixel_index"][:, 0] * cfg.azimuth_steps + f["pixel_index"][:, 1])
        sim = f["points"][order]  # the loader returns row-major range-image order
        assert item["points"].shape == sim.shape
        np.testing.assert_allclose(item["points"][:, :3], sim[:, :3], atol=1e-3, rtol=0)
        np.testing.assert_array_equal(item["points"][:, 3:], sim[:, 3:])
        for k in ("gt_boxes", "gt_labels", "gt_num_points", "gt_difficulty"):
            np.testing.assert_array_equal(item[k], f[k])
    assert pq.read_table(root / "validation" / "lidar_pose" / "sim0.parquet").num_rows == len(frames)


def test_waymo_metric_on_loaded_gt_is_perfect(simulated):
    from pc3d.evaluation.waymo import waymo_detection_metrics

    root, _, _ = simulated
    ds = WaymoDataset(root, "validation", source="v2")
    items = [ds[i] for i in range(len(ds))]
    frame = np.concatenate([np.full(len(it["gt_boxes"]), i) for i, it in enumerate(items)])
    types = S.LABEL_TO_TYPE[np.concatenate([it["gt_labels"] for it in items])]
    boxes = np.concatenate([it["gt_boxes"] for it in items])
    gt = {"frame_id": frame, "type": types, "bbox": boxes,
          "num_points": np.concatenate([it["gt_num_points"] for it in items]),
          "difficulty": np.concatenate([it["gt_difficulty"] for it in items])}
    pred = {"frame_id": frame, "type": types, "bbox": boxes, "score": np.ones(len(boxes), np.float32)}
    res = waymo_detection_metrics(gt, pred)
    names = {1: "VEHICLE", 2: "PEDESTRIAN", 4: "CYCLIST"}
    assert set(types.tolist()) == {1, 2, 4}
    for t, name in names.items():
        for level in (1, 2):
            if ((types == t) & (gt["difficulty"] <= level)).any():
                r = res[f"OBJECT_TYPE_TYPE_{name}_LEVEL_{level}"]
                assert r["AP"] == pytest.approx(1.0, abs=1e-6) and r["APH"] == pytest.approx(1.0, abs=1e-6)


# ---------------------------------------------------------------- bad input: errors name the file and the field
@pytest.fixture
def v2_copy(v2_root, tmp_path):
    shutil.copytree(v2_root[0], tmp_path / "r")
    return tmp_path / "r"


def rewrite(path, fn):
    t = pq.read_table(path)
    pq.write_table(fn(t), path)


def test_missing_component_file(v2_copy):
    path = v2_copy / "training" / "lidar_calibration" / "segB.parquet"
    path.unlink()
    with pytest.raises(ValueError, match=r"lidar_calibration/segB\.parquet: missing Waymo v2 component"):
        WaymoDataset(v2_copy, "training", source="v2")[3]


def test_missing_column(v2_copy):
    path = v2_copy / "training" / "lidar_calibration" / "segA.parquet"
    rewrite(path, lambda t: t.drop_columns([S.INCL_MIN]))
    with pytest.raises(ValueError, match=r"segA\.parquet: missing column '\[LiDARCalibrationComponent\]\.beam_inclination\.min'"):
        WaymoDataset(v2_copy, "training", source="v2")[0]


def test_wrong_column_type(v2_copy):
    path = v2_copy / "training" / "lidar" / "segA.parquet"
    rewrite(path, lambda t: t.set_column(t.schema.get_field_index(S.RI1_VALUES), S.RI1_VALUES,
                                         pa.array(["x"] * t.num_rows)))
    with pytest.raises(ValueError, match=r"lidar/segA\.parquet: column '\[LiDARComponent\]\.range_image_return1\.values' is string"):
        WaymoDataset(v2_copy, "training", source="v2")[0]


def test_not_a_parquet_file(v2_copy):
    path = v2_copy / "training" / "lidar_box" / "segA.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ValueError, match=r"lidar_box/segA\.parquet: not a readable parquet file"):
        WaymoDataset(v2_copy, "training", source="v2")[0]


def test_range_image_values_do_not_fill_shape(v2_copy):
    path = v2_copy / "training" / "lidar" / "segA.parquet"

    def truncate(t):
        vals = t.column(S.RI1_VALUES).to_pylist()
        vals[0] = vals[0][:-4]
        return t.set_column(t.schema.get_field_index(S.RI1_VALUES), S.RI1_VALUES, pa.array(vals, pa.list_(pa.float32())))
    rewrite(path, truncate)
    with pytest.raises(ValueError, match=r"segA\.parquet: '\[LiDARComponent\]\.range_image_return1\.values' has \d+ values but"):
        WaymoDataset(v2_copy, "training", source="v2")[0]


def test_unknown_box_type(v2_copy):
    path = v2_copy / "training" / "lidar_box" / "segA.parquet"
    rewrite(path, lambda t: t.set_column(t.schema.get_field_index(S.BOX_TYPE), S.BOX_TYPE,
                                         pa.array([7] * t.num_rows, pa.int8())))
    with pytest.raises(ValueError, match=r"lidar_box/segA\.parquet: column '\[LiDARBoxComponent\]\.type' has unknown box type 7"):
        WaymoDataset(v2_copy, "training", source="v2")[0]


def test_null_box_field(v2_copy):
    path = v2_copy / "training" / "lidar_box" / "segA.parquet"
    rewrite(path, lambda t: t.set_column(t.schema.get_field_index(S.BOX_NUM_POINTS), S.BOX_NUM_POINTS,
                                         pa.array([None] * t.num_rows, pa.int64())))
    with pytest.raises(ValueError, match=r"lidar_box/segA\.parquet: column '\[LiDARBoxComponent\]\.num_lidar_points_in_box' has nulls"):
        WaymoDataset(v2_copy, "training", source="v2")[0]


def test_pose_shape_mismatch(v2_copy):
    path = v2_copy / "training" / "lidar_pose" / "segA.parquet"

    def shrink(t):
        vals = [v[:-6 * 8] for v in t.column(S.POSE_VALUES).to_pylist()]  # one column fewer (8 rows)
        t = t.set_column(t.schema.get_field_index(S.POSE_VALUES), S.POSE_VALUES, pa.array(vals, pa.list_(pa.float32())))
        return t.set_column(t.schema.get_field_index(S.POSE_SHAPE), S.POSE_SHAPE,
                            pa.array([[8, 299, 6]] * t.num_rows, pa.list_(pa.int32(), 3)))
    rewrite(path, shrink)
    with pytest.raises(ValueError, match=r"lidar_pose/segA\.parquet: '\[LiDARPoseComponent\]\.range_image_return1\.shape' \[8, 299, 6\] does not match"):
        WaymoDataset(v2_copy, "training", source="v2")[0]


def test_openpcdet_truncated_npy(tmp_path):
    write_openpcdet_by_hand(tmp_path, np.random.default_rng(2))
    path = tmp_path / "waymo_processed_data" / "segment-1_with_camera_labels" / "0001.npy"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"0001\.npy: unreadable or truncated \.npy"):
        WaymoDataset(tmp_path, "train", source="openpcdet")[1]


def test_openpcdet_point_and_label_count_mismatch(tmp_path):
    write_openpcdet_by_hand(tmp_path, np.random.default_rng(4))
    infos = pickle.load(open(tmp_path / "waymo_infos_train.pkl", "rb"))
    infos[0]["num_points_of_each_lidar"] = [300, 100, 50, 30, 21]
    infos[1]["annos"]["num_points_in_gt"] = np.array([1, 2, 3])
    pickle.dump(infos, open(tmp_path / "waymo_infos_train.pkl", "wb"))
    ds = WaymoDataset(tmp_path, "train", source="openpcdet")
    with pytest.raises(ValueError, match=r"0000\.npy: 500 points but the info's 'num_points_of_each_lidar' sums to 501"):
        ds[0]
    with pytest.raises(ValueError, match=r"waymo_infos_train\.pkl frame segment-1_with_camera_labels_001: annos field 'num_points_in_gt' has 3 rows but 'name' has 5"):
        ds[1]


def test_openpcdet_unknown_class_name_and_bad_width(tmp_path):
    write_openpcdet_by_hand(tmp_path, np.random.default_rng(5))
    infos = pickle.load(open(tmp_path / "waymo_infos_train.pkl", "rb"))
    infos[0]["annos"]["name"] = np.array(["Vehicle", "Truck", "Pedestrian", "Cyclist", "Vehicle"])
    pickle.dump(infos, open(tmp_path / "waymo_infos_train.pkl", "wb"))
    np.save(tmp_path / "waymo_processed_data" / "segment-1_with_camera_labels" / "0001.npy", np.zeros((500, 5), np.float32))
    ds = WaymoDataset(tmp_path, "train", source="openpcdet")
    with pytest.raises(ValueError, match=r"annos field 'name' has unknown class 'Truck'"):
        ds[0]
    with pytest.raises(ValueError, match=r"0001\.npy: points must be \(N, 6\)"):
        ds[1]


def test_import_does_not_load_pyarrow():
    code = "import sys, pc3d.datasets.waymo; assert 'pyarrow' not in sys.modules, 'pyarrow imported'"
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(WT), "PATH": "/usr/bin"})
