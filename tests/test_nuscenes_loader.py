"""nuScenes loader: round trips through the nuScenes writer, a cross-check against nuscenes-devkit, the
official metric on loaded ground truth, and bad input.

The hand-made scene (one scene, 3 keyframes, 2 sweeps before each) is built here with its own plain
geometry, independent of the loader: static world points with unique intensities, seen from a moving,
tilted ego; one object of each of the 10 detection classes moving at a constant velocity, plus an
ignored category (animal), a bicycle rack and a box no point reaches.
"""
import json
import pickle
import shutil
import types

import numpy as np
import pytest

from pc3d.datasets.nuscenes import NuScenesDataset, NuScenesFormatError, NuScenesTables
from pc3d.datasets.nuscenes.boxes import CATEGORY_TO_DETECTION, DETECTION_NAMES, IGNORED_CATEGORIES
from pc3d.datasets.nuscenes.convert import create_infos, main as convert_main, write_infos
from pc3d.datasets.nuscenes.writer import CATEGORIES, DEFAULT_LIDAR2EGO, write_nuscenes

VERSION = "v1.0-mini"
SCENE = "scene-0103"  # an official mini_val scene name
KEYS, SWEEPS = 3, 2
DT_US = 500_000 // (SWEEPS + 1)
T0 = 1_532_402_927_000_000
# (category, attribute, size (dx, dy, dz), start offset from the ego start (global), velocity (vx, vy) m/s)
OBJECTS = [
    ("vehicle.car", "vehicle.moving", (4.5, 1.9, 1.6), (12.0, 3.0), (4.0, 1.0)),
    ("vehicle.truck", "vehicle.parked", (8.0, 2.5, 3.2), (-14.0, 6.0), (0.0, 0.0)),
    ("vehicle.bus.rigid", "vehicle.moving", (11.0, 2.6, 3.1), (20.0, -9.0), (-6.0, 0.5)),
    ("vehicle.trailer", "vehicle.parked", (7.0, 2.4, 3.0), (-8.0, -12.0), (0.0, 0.0)),
    ("vehicle.construction", "vehicle.stopped", (6.0, 2.8, 3.0), (5.0, 16.0), (0.3, -0.2)),
    ("human.pedestrian.adult", "pedestrian.moving", (0.8, 0.7, 1.8), (6.0, -5.0), (1.2, 0.4)),
    ("vehicle.motorcycle", "cycle.with_rider", (2.1, 0.8, 1.5), (-5.0, 8.0), (-3.0, 2.0)),
    ("vehicle.bicycle", "cycle.without_rider", (1.8, 0.6, 1.2), (9.0, 9.0), (0.0, 0.0)),
    ("movable_object.trafficcone", "", (0.4, 0.4, 0.8), (4.0, 6.0), (0.0, 0.0)),
    ("movable_object.barrier", "", (2.0, 0.5, 1.0), (-4.0, -6.0), (0.0, 0.0)),
    ("animal", "", (0.9, 0.4, 0.6), (3.0, -9.0), (0.5, 0.0)),
    ("static_object.bicycle_rack", "", (3.0, 1.0, 1.0), (-10.0, 14.0), (0.0, 0.0)),
    ("vehicle.car", "vehicle.parked", (4.4, 1.8, 1.5), (25.0, 20.0), (0.0, 0.0)),  # no point: dropped
]
EMPTY_OBJECT = len(OBJECTS) - 1


def rot(yaw, pitch=0.0, roll=0.0):
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    return (np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]]) @ np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
            @ np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]]))


def pose(t_s):
    """ego2global at time t_s: driving along a curve, pitching and rolling a little."""
    m = np.eye(4)
    m[:3, :3] = rot(0.4 + 0.15 * t_s, 0.02 * np.sin(3 * t_s), -0.01 + 0.015 * t_s)
    m[:3, 3] = (600.0 + 6.0 * t_s, 1200.0 + 2.5 * t_s, 0.5 + 0.05 * t_s)
    return m


def object_boxes(t_s):
    """(K, 7) global boxes [x, y, z, dx, dy, dz, yaw] of OBJECTS at time t_s, and (K, 2) velocities."""
    start = pose(0.0)[:3, 3]
    boxes, vel = [], []
    for k, (_, _, size, off, v) in enumerate(OBJECTS):
        yaw = 0.7 * k - 2.0 if v == (0.0, 0.0) else np.arctan2(v[1], v[0])
        xy = start[:2] + np.asarray(off) + t_s * np.asarray(v)
        boxes.append([xy[0], xy[1], start[2] + size[2] / 2 - 1.0, size[0], size[1], size[2], yaw])
        vel.append(v)
    return np.array(boxes), np.array(vel, dtype=np.float64)


def points_in_box(box, n, rng):
    local = (rng.uniform(-0.45, 0.45, (n, 3))) * box[3:6]
    return local @ rot(box[6]).T + box[:3]


def make_scene(rng):
    """The hand-made scene (writer input) plus the truth the tests compare against."""
    # Static world points, none within 3 m (BEV) of the ego's path, so no scan drops one as too close.
    path = np.array([pose(j * DT_US * 1e-6)[:3, 3] for j in range(KEYS * (SWEEPS + 1))])
    world = np.zeros((0, 3))
    while len(world) < 200:
        cand = pose(0.0)[:3, 3] + np.concatenate([rng.uniform(-40, 40, (400, 2)), rng.uniform(-1.5, 3.0, (400, 1))], 1)
        far = np.linalg.norm(cand[:, None, :2] - path[None, :, :2], axis=2).min(1) > 3.0
        world = np.concatenate([world, cand[far]])[:200]
    l2e = DEFAULT_LIDAR2EGO
    frames, truth = [], []
    for j in range(KEYS * (SWEEPS + 1)):
        t_us = T0 + j * DT_US
        t_s = (t_us - T0) * 1e-6
        e2g = pose(t_s)
        l2g = e2g @ l2e
        g2l = np.linalg.inv(l2g)
        key = j % (SWEEPS + 1) == SWEEPS
        glob = [world]
        inten = [np.arange(200, dtype=np.float64)]
        boxes, vel = object_boxes(t_s)
        for k, box in enumerate(boxes):
            if k != EMPTY_OBJECT:
                glob.append(points_in_box(box, 5 + k, rng))
                inten.append(np.full(5 + k, 250.0))
        glob = np.concatenate(glob)
        pts = np.zeros((len(glob), 5), np.float32)
        pts[:, :3] = glob @ g2l[:3, :3].T + g2l[:3, 3]
        pts[:, 3] = np.concatenate(inten)
        pts[:, 4] = np.arange(len(glob)) % 32
        if not key:  # returns off the ego's own roof, which the sweep loader removes
            pts = np.concatenate([pts, np.array([[0.4, -0.3, -0.2, 251, 3], [-0.6, 0.5, -0.3, 251, 4]], np.float32)])
        frame = {"timestamp": t_us, "ego2global": e2g, "is_key_frame": key, "points": pts}
        if key:
            frame["annotations"] = {"boxes": boxes, "instance_ids": list(range(len(OBJECTS))),
                                    "categories": [o[0] for o in OBJECTS], "attributes": [o[1] for o in OBJECTS]}
        frames.append(frame)
        truth.append({"t_us": t_us, "l2g": l2g, "boxes": boxes, "vel": vel, "key": key, "points": glob})
    return [{"name": SCENE, "frames": frames}], world, truth


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("nuscenes")
    scenes, world, truth = make_scene(np.random.default_rng(0))
    write_nuscenes(root, scenes, version=VERSION)
    paths = convert_main(types.SimpleNamespace(root=str(root), version=VERSION, sweeps=SWEEPS, out=None))
    return types.SimpleNamespace(root=root, world=world, truth=truth, paths=paths)


def copy_root(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_converter_writes_the_official_split(dataset_root):
    assert [p.name for p in dataset_root.paths] == ["nuscenes_infos_mini_train.pkl", "nuscenes_infos_mini_val.pkl"]
    with open(dataset_root.paths[0], "rb") as f:
        assert pickle.load(f)["infos"] == []  # the scene is a mini_val scene
    with open(dataset_root.paths[1], "rb") as f:
        data = pickle.load(f)
    assert data["metainfo"]["version"] == VERSION and len(data["infos"]) == KEYS
    assert [i["timestamp"] for i in data["infos"]] == [t["t_us"] for t in dataset_root.truth if t["key"]]
    # Each keyframe has the sweeps the scene offers: 2 for the first, then capped at --sweeps.
    assert [len(i["sweeps"]) for i in data["infos"]] == [SWEEPS] * KEYS


def expected_lidar_boxes(truth):
    """Independent global -> LiDAR conversion: centre R^T (c - t), heading of R^T x_box, velocity R^T (v, 0)."""
    r, t = truth["l2g"][:3, :3], truth["l2g"][:3, 3]
    b = truth["boxes"]
    centre = (b[:, :3] - t) @ r
    axis = np.stack([np.cos(b[:, 6]), np.sin(b[:, 6]), np.zeros(len(b))], 1) @ r
    vel = np.concatenate([truth["vel"], np.zeros((len(b), 1))], 1) @ r
    return np.concatenate([centre, b[:, 3:6], np.arctan2(axis[:, 1], axis[:, 0])[:, None], vel[:, :2]], 1)


def test_boxes_round_trip_exactly(dataset_root):
    ds = NuScenesDataset(dataset_root.root, split="mini_val", sweeps=SWEEPS, velocity_nan_to=None)
    keys = [t for t in dataset_root.truth if t["key"]]
    det = [k for k, o in enumerate(OBJECTS) if o[0] in CATEGORY_TO_DETECTION and k != EMPTY_OBJECT]
    for item, truth in zip((ds[i] for i in range(len(ds))), keys):
        want = expected_lidar_boxes(truth)[det]
        got = item["gt_boxes"].astype(np.float64)
        assert got.shape == (len(det), 9)
        np.testing.assert_allclose(got[:, :6], want[:, :6], atol=1e-5)
        dh = np.mod(got[:, 6] - want[:, 6] + np.pi, 2 * np.pi) - np.pi
        np.testing.assert_allclose(dh, 0, atol=1e-5)
        np.testing.assert_allclose(got[:, 7:9], want[:, 7:9], atol=1e-5)
        names = [CATEGORY_TO_DETECTION[OBJECTS[k][0]] for k in det]
        assert [DETECTION_NAMES[i] for i in item["gt_labels"]] == names
        assert list(item["gt_attributes"]) == [OBJECTS[k][1] for k in det]
        inside = [np.all(np.abs((truth["points"] - b[:3]) @ rot(b[6])) <= b[3:6] / 2, axis=1).sum()
                  for b in truth["boxes"][det]]
        assert list(item["gt_num_points"]) == inside and min(inside) >= 5
        np.testing.assert_allclose(item["ego2global"] @ item["lidar2ego"], truth["l2g"], atol=1e-9)
        rack = item["bike_racks"]["translation"]
        np.testing.assert_allclose(rack, truth["boxes"][[11], :3], atol=1e-9)


def test_empty_and_ignored_boxes_stay_in_the_info(dataset_root):
    ds = NuScenesDataset(dataset_root.root, split="mini_val", sweeps=0, drop_empty=False)
    info = ds.infos[0]
    assert list(info["categories"]) == [o[0] for o in OBJECTS]
    assert info["gt_names"][10] == "" and info["gt_names"][11] == ""  # animal, bicycle rack: ignored
    assert info["num_lidar_pts"][EMPTY_OBJECT] == 0
    item = ds[0]
    assert len(item["gt_boxes"]) == 11  # 10 classes + the empty car, without the two ignored categories


def test_sweeps_land_static_points_on_the_keyframe_position(dataset_root):
    ds = NuScenesDataset(dataset_root.root, split="mini_val", sweeps=SWEEPS, remove_close=1.0)
    keys = [i for i, t in enumerate(dataset_root.truth) if t["key"]]
    for n, j in enumerate(keys):
        truth = dataset_root.truth[j]
        pts = ds[n]["points"]
        g2l = np.linalg.inv(truth["l2g"])
        want = dataset_root.world @ g2l[:3, :3].T + g2l[:3, 3]
        static = pts[:, 3] < 200
        idx = pts[static, 3].astype(int)
        # Every static world point appears once per scan (keyframe + 2 sweeps), all at one place.
        assert np.bincount(idx, minlength=200).tolist() == [SWEEPS + 1] * 200
        np.testing.assert_allclose(pts[static, :3], want[idx], atol=2e-5)
        lags = sorted(set(np.round(pts[:, 4].astype(np.float64), 6)))
        want_lags = [round((truth["t_us"] - dataset_root.truth[j - s]["t_us"]) * 1e-6, 6) for s in range(SWEEPS + 1)]
        assert lags == sorted(want_lags)
        assert not (pts[:, 3] == 251).any()  # the roof returns of the sweeps were removed
    with_roof = NuScenesDataset(dataset_root.root, split="mini_val", sweeps=SWEEPS, remove_close=0.0)[0]["points"]
    assert (with_roof[:, 3] == 251).sum() == 2 * SWEEPS


def test_keyframe_only_has_zero_time_lag(dataset_root):
    pts = NuScenesDataset(dataset_root.root, split="mini_val", sweeps=0)[1]["points"]
    assert pts.shape[1] == 5 and (pts[:, 4] == 0).all() and (pts[:, 3] < 200).sum() == 200


def test_gt_as_predictions_scores_map_one(dataset_root):
    from pc3d.evaluation import nuscenes_detection_metrics
    from pc3d.evaluation.nuscenes_io import lidar_detections_to_fields

    ds = NuScenesDataset(dataset_root.root, split="mini_val", sweeps=0)
    gt, pred, ego, racks = {}, {}, {}, {}
    for i in range(len(ds)):
        it = ds[i]
        l2g = it["ego2global"] @ it["lidar2ego"]
        f = lidar_detections_to_fields(it["gt_boxes"], np.ones(len(it["gt_boxes"])), it["gt_labels"], l2g,
                                       attributes=list(it["gt_attributes"]))
        pred[it["sample_token"]] = f
        g = {k: v for k, v in f.items() if k != "detection_score"}
        g["num_pts"] = it["gt_num_points"]
        gt[it["sample_token"]] = g
        ego[it["sample_token"]] = it["ego2global"][:3, 3]
        racks[it["sample_token"]] = it["bike_racks"]
    res = nuscenes_detection_metrics(gt, pred, ego, racks)
    assert res["mAP"] == pytest.approx(1.0)
    assert all(v == 3 for v in res["num_gt"].values())  # every class, every keyframe, nothing filtered
    assert res["NDS"] == pytest.approx(1.0, abs=1e-6)


# ---- cross-check against nuscenes-devkit (an independent reader of the same files) ----

def devkit():
    try:
        from nuscenes.nuscenes import NuScenes  # noqa: F401
    except ImportError as e:
        pytest.skip(f"nuscenes-devkit is not importable: {e}")
    import nuscenes
    return nuscenes


def test_points_equal_devkit_multisweep(dataset_root):
    devkit()
    from nuscenes.nuscenes import NuScenes
    from nuscenes.utils.data_classes import LidarPointCloud

    nusc = NuScenes(version=VERSION, dataroot=str(dataset_root.root), verbose=False)
    ds = NuScenesDataset(dataset_root.root, split="mini_val", sweeps=SWEEPS, remove_close=1.0)
    for i, info in enumerate(ds.infos):
        sample = nusc.get("sample", info["token"])
        pc, times = LidarPointCloud.from_file_multisweep(nusc, sample, "LIDAR_TOP", "LIDAR_TOP", nsweeps=SWEEPS + 1,
                                                         min_distance=1.0)
        ours = ds[i]["points"]
        assert ours.shape == (pc.points.shape[1], 5)
        np.testing.assert_allclose(ours[:, :4], pc.points.T, atol=1e-4)
        np.testing.assert_allclose(ours[:, 4], times[0], atol=1e-6)


def test_boxes_equal_devkit(dataset_root):
    devkit()
    from nuscenes.eval.detection.utils import category_to_detection_name
    from nuscenes.nuscenes import NuScenes

    nusc = NuScenes(version=VERSION, dataroot=str(dataset_root.root), verbose=False)
    ds = NuScenesDataset(dataset_root.root, split="mini_val", sweeps=0)
    for info in ds.infos:
        sample = nusc.get("sample", info["token"])
        _, boxes, _ = nusc.get_sample_data(sample["data"]["LIDAR_TOP"])
        assert [b.token for b in boxes] == list(info["ann_tokens"])
        l2g = info["ego2global"] @ info["lidar2ego"]
        for k, b in enumerate(boxes):
            np.testing.assert_allclose(info["gt_boxes"][k, :3], b.center, atol=1e-6)
            np.testing.assert_allclose(info["gt_boxes"][k, 3:6], b.wlh[[1, 0, 2]], atol=1e-9)
            x_axis = b.orientation.rotation_matrix[:, 0]
            dh = info["gt_boxes"][k, 6] - np.arctan2(x_axis[1], x_axis[0])
            assert abs(np.mod(dh + np.pi, 2 * np.pi) - np.pi) < 1e-6
            v = np.asarray(nusc.box_velocity(b.token), np.float64)
            v_lidar = (np.array([v[0], v[1], 0.0]) @ l2g[:3, :3])[:2]
            np.testing.assert_allclose(info["gt_velocity"][k], v_lidar, atol=1e-6)
            want = category_to_detection_name(b.name) or ""
            assert info["gt_names"][k] == want


def test_category_mapping_and_splits_equal_devkit():
    devkit()
    from nuscenes.eval.detection.utils import category_to_detection_name
    from nuscenes.utils import splits

    from pc3d.datasets.nuscenes.splits import official_splits

    for cat in CATEGORIES + IGNORED_CATEGORIES:
        assert (category_to_detection_name(cat) or "") == (CATEGORY_TO_DETECTION.get(cat, ""))
    ours = official_splits()
    for name in ("train", "val", "test", "mini_train", "mini_val"):
        assert sorted(ours[name]) == sorted(getattr(splits, name)), name
    assert len(CATEGORIES) == 23


# ---- bad input: an error naming the file and the field ----

def test_missing_table_names_the_file(dataset_root, tmp_path):
    root = copy_root(dataset_root.root, tmp_path / "ds")
    (root / VERSION / "instance.json").unlink()
    with pytest.raises(NuScenesFormatError, match=r"missing table .*instance\.json"):
        NuScenesTables(root, VERSION)


def test_truncated_bin_names_the_file(dataset_root, tmp_path):
    root = copy_root(dataset_root.root, tmp_path / "ds")
    ds = NuScenesDataset(root, split="mini_val", sweeps=SWEEPS)
    sweep = root / ds.infos[1]["sweeps"][0]["path"]
    sweep.write_bytes(sweep.read_bytes()[:-3])
    with pytest.raises(NuScenesFormatError, match=rf"{sweep.name}: truncated .* not a multiple of 20"):
        ds[1]
    key = root / ds.infos[2]["lidar_path"]
    key.write_bytes(key.read_bytes()[:-8])
    with pytest.raises(NuScenesFormatError, match=rf"{key.name}: truncated"):
        create_infos(root, VERSION, SWEEPS, progress=False)


def test_unknown_category_names_the_file_and_field(dataset_root, tmp_path):
    root = copy_root(dataset_root.root, tmp_path / "ds")
    path = root / VERSION / "category.json"
    cats = json.loads(path.read_text())
    cats[[c["name"] for c in cats].index("vehicle.car")]["name"] = "vehicle.spaceship"
    path.write_text(json.dumps(cats))
    with pytest.raises(NuScenesFormatError, match=r"category\.json: record .* field 'name': unknown nuScenes "
                                                  r"category 'vehicle\.spaceship'"):
        create_infos(root, VERSION, SWEEPS, progress=False)


def test_mismatched_counts_name_the_file_and_field(dataset_root, tmp_path):
    root = copy_root(dataset_root.root, tmp_path / "ds")
    # An annotation claiming more LiDAR points than its keyframe scan has.
    path = root / VERSION / "sample_annotation.json"
    anns = json.loads(path.read_text())
    anns[0]["num_lidar_pts"] = 10 ** 6
    path.write_text(json.dumps(anns))
    with pytest.raises(NuScenesFormatError, match=r"sample_annotation\.json: record .* field 'num_lidar_pts' = "
                                                  r"1000000 exceeds the \d+ points of .*\.pcd\.bin"):
        create_infos(root, VERSION, SWEEPS, progress=False)
    # An info file whose per-box fields disagree in length.
    infos = create_infos(dataset_root.root, VERSION, SWEEPS, progress=False)
    infos["mini_val"][1]["gt_names"] = infos["mini_val"][1]["gt_names"][:-1]
    out = write_infos(tmp_path / "infos", VERSION, infos, SWEEPS)[-1]
    assert out.name == "nuscenes_infos_mini_val.pkl"
    with pytest.raises(NuScenesFormatError, match=rf"{out.name}: info 1 .* field 'gt_names' has 12 entries but "
                                                  r"gt_boxes has 13"):
        NuScenesDataset(root, info_file=out, sweeps=SWEEPS)


def test_broken_link_names_the_file_and_field(dataset_root, tmp_path):
    root = copy_root(dataset_root.root, tmp_path / "ds")
    path = root / VERSION / "sample_annotation.json"
    anns = json.loads(path.read_text())
    anns[3]["instance_token"] = "f" * 32
    path.write_text(json.dumps(anns))
    with pytest.raises(NuScenesFormatError, match=rf"sample_annotation\.json: record '{anns[3]['token']}' field "
                                                  r"'instance_token': no instance record"):
        create_infos(root, VERSION, SWEEPS, progress=False)


def test_writer_rejects_mismatched_annotations(tmp_path):
    scenes, _, _ = make_scene(np.random.default_rng(1))
    scenes[0]["frames"][SWEEPS]["annotations"]["categories"] = ["vehicle.car"] * 3
    with pytest.raises(ValueError, match=r"frame 2 annotations: field 'categories' has 3 entries but 'boxes' has 13"):
        write_nuscenes(tmp_path, scenes, version=VERSION)


# ---- the simulator writes nuScenes: a simulated street scene round-trips through the loader ----

@pytest.fixture(scope="module")
def simulated_root(tmp_path_factory):
    pytest.importorskip("open3d", reason="open3d (the simulator's ray caster) is not installed")
    from pc3d.datasets.nuscenes.simulate import SequenceConfig, simulate_sequence
    from pc3d.datasets.simulator.sensor import LidarConfig

    root = tmp_path_factory.mktemp("nuscenes_sim")
    scene = simulate_sequence(7, SCENE, SequenceConfig(keyframes=2, sweeps_between=1, counts=(10, 5, 3)),
                              lidar=LidarConfig(num_beams=24, azimuth_steps=720))
    write_nuscenes(root, [scene], version=VERSION)
    convert_main(types.SimpleNamespace(root=str(root), version=VERSION, sweeps=1, out=None))
    return types.SimpleNamespace(root=root, scene=scene)


def inside(points, box):
    """(N,) bool: points (N, 3) inside an upright box (7,) of the same frame."""
    local = (points - box[:3]) @ rot(box[6])
    return np.all(np.abs(local) <= box[3:6] / 2, axis=1)


def test_simulated_scene_round_trips(simulated_root):
    scene = simulated_root.scene
    ds = NuScenesDataset(simulated_root.root, split="mini_val", sweeps=1, drop_empty=False, remove_close=0.0)
    keys = [j for j, f in enumerate(scene["frames"]) if f["is_key_frame"]]
    assert len(ds) == 2 and keys == [1, 3]
    for n, j in enumerate(keys):
        item, truth, frame = ds[n], scene["truth"][j], scene["frames"][j]
        l2g = truth["ego2global"] @ DEFAULT_LIDAR2EGO
        want = expected_lidar_boxes({"l2g": l2g, "boxes": truth["boxes"], "vel": truth["velocity"]})
        got = item["gt_boxes"].astype(np.float64)
        assert len(got) == len(want) > 10
        np.testing.assert_allclose(got[:, :6], want[:, :6], atol=1e-5)
        np.testing.assert_allclose(np.mod(got[:, 6] - want[:, 6] + np.pi, 2 * np.pi) - np.pi, 0, atol=1e-5)
        np.testing.assert_allclose(got[:, 7:9], want[:, 7:9], atol=1e-5)  # constant velocity: exact differences
        # The keyframe scan comes back unchanged (x, y, z, intensity), followed by the previous sweep.
        key_pts = item["points"][item["points"][:, 4] == 0]
        np.testing.assert_array_equal(key_pts[:, :4], frame["points"][:, :4])
        # Points of the previous sweep that hit a parked object lie inside its box after the loader moved
        # them into the keyframe frame: count them (in the global frame, where boxes are upright) from the
        # sweep's own file and pose, and from the loader's output and the keyframe pose.
        prev, prev_truth = scene["frames"][j - 1], scene["truth"][j - 1]
        prev_l2g = prev_truth["ego2global"] @ DEFAULT_LIDAR2EGO
        sweep_pts = item["points"][item["points"][:, 4] > 0]
        np.testing.assert_allclose(sweep_pts[:, 4], (frame["timestamp"] - prev["timestamp"]) * 1e-6, atol=1e-7)
        prev_global = prev["points"][:, :3].astype(np.float64) @ prev_l2g[:3, :3].T + prev_l2g[:3, 3]
        loaded_global = sweep_pts[:, :3].astype(np.float64) @ l2g[:3, :3].T + l2g[:3, 3]
        parked = np.nonzero(np.hypot(*truth["velocity"].T) == 0)[0]
        seen = 0
        for k in parked:
            n_prev = inside(prev_global, truth["boxes"][k]).sum()
            assert inside(loaded_global, truth["boxes"][k]).sum() == n_prev
            seen += n_prev
        assert seen > 50


def test_registry_pipeline_and_collate(dataset_root):
    from pc3d.datasets.collate import collate_batch
    from pc3d.registry import DATASETS

    cfg = dict(type="NuScenesDataset", data_root=str(dataset_root.root), split="mini_val", sweeps=SWEEPS,
               pipeline=[dict(type="PointShuffle")], seed=3)
    ds = DATASETS.build(cfg)
    raw = ds.get_data_info(1)["points"]
    a, b = ds[1]["points"], ds[1]["points"]
    np.testing.assert_array_equal(a, b)  # seeded augmentation is reproducible
    assert not np.array_equal(a, raw)
    np.testing.assert_array_equal(a[np.lexsort(a.T)], raw[np.lexsort(raw.T)])  # a permutation of the rows
    batch = collate_batch([ds[0], ds[1]])
    assert batch["points"].shape[1] == 6 and batch["gt_boxes"][0].shape[1] == 9
    assert batch["sample_token"] == [ds.infos[0]["token"], ds.infos[1]["token"]]


def test_test_version_without_annotations(tmp_path):
    scenes, _, _ = make_scene(np.random.default_rng(2))
    scenes[0]["name"] = "scene-0077"  # an official test scene
    for f in scenes[0]["frames"]:
        f.pop("annotations", None)
    write_nuscenes(tmp_path, scenes, version="v1.0-test")
    infos = create_infos(tmp_path, "v1.0-test", max_sweeps=SWEEPS, progress=False)
    assert list(infos) == ["test"] and len(infos["test"]) == KEYS
    assert all(len(i["gt_boxes"]) == 0 and i["gt_boxes"].shape == (0, 7) for i in infos["test"])
    write_infos(tmp_path, "v1.0-test", infos, SWEEPS)
    item = NuScenesDataset(tmp_path, split="test", sweeps=SWEEPS)[2]
    assert item["gt_boxes"].shape == (0, 9) and len(item["points"]) > 0
