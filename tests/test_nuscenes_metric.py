"""nuScenes detection metric: equality with nuscenes-devkit on generated scenes, hand-computed cases,
LiDAR <-> global conversion, the submission JSON and the mmengine metric."""
import json

import numpy as np
import pytest

from pc3d.evaluation.nuscenes import NuScenesMetric, format_nuscenes_table, nuscenes_detection_metrics
from pc3d.evaluation.nuscenes_boxes import DETECTION_NAMES, TP_METRICS
from pc3d.geometry.nuscenes import (global_boxes_to_lidar, lidar_boxes_to_global, quaternion_yaw,
                                              yaw_to_quaternion)
from pc3d.evaluation.nuscenes_io import (default_attributes, fields_to_records, lidar_detections_to_fields,
                                        load_submission, write_submission)

# Rough w, l, h per class and the attributes a box of that class may carry.
SIZES = {"car": (1.9, 4.6, 1.7), "truck": (2.5, 7.0, 3.0), "bus": (2.9, 11.0, 3.5), "trailer": (2.9, 12.0, 3.9),
         "construction_vehicle": (2.8, 6.5, 3.2), "pedestrian": (0.7, 0.7, 1.8), "motorcycle": (0.8, 2.1, 1.5),
         "bicycle": (0.6, 1.7, 1.3), "traffic_cone": (0.4, 0.4, 1.0), "barrier": (2.5, 0.5, 1.0)}
ATTRS = {"car": ("vehicle.moving", "vehicle.parked", "vehicle.stopped"),
         "pedestrian": ("pedestrian.moving", "pedestrian.standing", "pedestrian.sitting_lying_down"),
         "motorcycle": ("cycle.with_rider", "cycle.without_rider"),
         "bicycle": ("cycle.with_rider", "cycle.without_rider")}
for _n in ("truck", "bus", "trailer", "construction_vehicle"):
    ATTRS[_n] = ATTRS["car"]


def _boxes(rng, names, centre, spread):
    m = len(names)
    size = np.array([SIZES[n] for n in names]) * rng.uniform(0.8, 1.2, (m, 3))
    xy = centre[:2] + rng.uniform(-spread, spread, (m, 2))
    z = centre[2] + rng.uniform(-1, 1, m)
    attrs = [ATTRS[n][rng.integers(len(ATTRS[n]))] if n in ATTRS and rng.random() > 0.1 else "" for n in names]
    return {"translation": np.column_stack([xy, z]), "size": size,
            "rotation": yaw_to_quaternion(rng.uniform(-np.pi, np.pi, m)),
            "velocity": rng.normal(0, 3, (m, 2)), "detection_name": list(names), "attribute_name": attrs}


def generate_scenes(seed, num_samples=6, gt_per_sample=40):
    """Returns (gt, pred, ego, racks): GT with num_pts (some 0) and NaN velocities, predictions with noise,
    misses, duplicates, wrong classes, far-away FPs and tied scores."""
    rng = np.random.default_rng(seed)
    gt, pred, ego, racks = {}, {}, {}, {}
    for s in range(num_samples):
        token = f"sample{seed}_{s}"
        centre = np.array([rng.uniform(300, 1500), rng.uniform(300, 1500), 0.0])
        ego[token] = centre + np.array([0, 0, rng.uniform(-0.5, 0.5)])
        names = [DETECTION_NAMES[i] for i in rng.integers(0, 10, gt_per_sample)]
        g = _boxes(rng, names, centre, 55.0)
        g["velocity"][rng.random(gt_per_sample) < 0.1] = np.nan
        g["num_pts"] = np.where(rng.random(gt_per_sample) < 0.1, 0, rng.integers(1, 500, gt_per_sample))
        gt[token] = g
        cycles = [i for i, n in enumerate(names) if n in ("bicycle", "motorcycle")]
        if cycles:  # a bike rack (rotated, 6 x 2 m) around the first cycle: it and its predictions drop out
            c = g["translation"][cycles[0]]
            racks[token] = {"translation": c[None] + [[0.5, -0.3, 0.0]], "size": np.array([[2.0, 6.0, 3.0]]),
                            "rotation": yaw_to_quaternion(np.array([rng.uniform(-np.pi, np.pi)]))}
        keep = np.flatnonzero(rng.random(gt_per_sample) < 0.8)  # 20% missed
        dup = keep[rng.random(len(keep)) < 0.15]  # some GT predicted twice
        src = np.concatenate([keep, dup])
        k = len(src)
        p = {"translation": g["translation"][src] + rng.normal(0, 1.0, (k, 3)) * rng.uniform(0.05, 1.5, (k, 1)),
             "size": g["size"][src] * rng.uniform(0.7, 1.3, (k, 3)),
             "rotation": yaw_to_quaternion(rng.uniform(-np.pi, np.pi, k) * (rng.random(k) < 0.2)
                                           + np.arctan2(g["rotation"][src, 3], g["rotation"][src, 0]) * 2
                                           + rng.normal(0, 0.2, k)),
             "velocity": np.nan_to_num(g["velocity"][src]) + rng.normal(0, 1.0, (k, 2)),
             "detection_name": [g["detection_name"][i] for i in src],
             "attribute_name": [g["attribute_name"][i] if rng.random() < 0.7 else
                                ATTRS.get(g["detection_name"][i], ("",))[0] for i in src]}
        wrong = rng.random(k) < 0.05  # wrong class
        for i in np.flatnonzero(wrong):
            p["detection_name"][i] = DETECTION_NAMES[rng.integers(10)]
            p["attribute_name"][i] = ""
        extra = _boxes(rng, [DETECTION_NAMES[i] for i in rng.integers(0, 10, 12)], centre, 60.0)
        for key in p:
            p[key] = (list(p[key]) + list(extra[key])) if isinstance(p[key], list) else \
                np.concatenate([p[key], extra[key]])
        n = len(p["detection_name"])
        # Scores rounded to 2 decimals: many exact ties, which the official order breaks by box order.
        p["detection_score"] = np.round(rng.uniform(0.01, 1.0, n), 2)
        pred[token] = p
    # One sample without any prediction (its GT all missed).
    pred[token] = {k: (v[:0] if isinstance(v, np.ndarray) else []) for k, v in pred[token].items()}
    return gt, pred, ego, racks


# ---------------------------------------------------------------------------------------------
# The official implementation, called on in-memory EvalBoxes (no dataset files).
# ---------------------------------------------------------------------------------------------
class _FakeNuScenes:
    """The few tables ``add_center_dist`` and ``filter_eval_boxes`` read: sample, sample_data,
    ego_pose and the bike-rack sample_annotations."""

    def __init__(self, ego, racks):
        self.rows = {}
        for tok, e in ego.items():
            anns = []
            r = racks.get(tok)
            for i in range(0 if r is None else len(r["translation"])):
                anns.append(f"{tok}_rack{i}")
                self.rows[("sample_annotation", anns[-1])] = {
                    "category_name": "static_object.bicycle_rack", "translation": r["translation"][i].tolist(),
                    "size": r["size"][i].tolist(), "rotation": r["rotation"][i].tolist()}
            self.rows[("sample", tok)] = {"anns": anns, "data": {"LIDAR_TOP": f"sd_{tok}"}}
            self.rows[("sample_data", f"sd_{tok}")] = {"ego_pose_token": f"ep_{tok}"}
            self.rows[("ego_pose", f"ep_{tok}")] = {"translation": [float(v) for v in e]}

    def get(self, table, token):
        return self.rows[(table, token)]


def devkit_metrics(gt, pred, ego, racks, tmp_path):
    """nuscenes-devkit's DetectionEval.evaluate steps; predictions go through our submission JSON."""
    loaders = pytest.importorskip("nuscenes.eval.common.loaders",
                                  reason="nuscenes-devkit is not installed (a test extra)")
    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.common.data_classes import EvalBoxes
    from nuscenes.eval.detection.algo import accumulate, calc_ap, calc_tp
    from nuscenes.eval.detection.data_classes import DetectionBox, DetectionMetrics

    cfg = config_factory("detection_cvpr_2019")
    nusc = _FakeNuScenes(ego, racks)
    path = write_submission(tmp_path / "results.json", pred)
    pred_boxes, _ = loaders.load_prediction(str(path), cfg.max_boxes_per_sample, DetectionBox)
    gt_boxes = EvalBoxes()
    for tok, f in gt.items():
        gt_boxes.add_boxes(tok, [DetectionBox(
            sample_token=tok, translation=tuple(f["translation"][i].tolist()), size=tuple(f["size"][i].tolist()),
            rotation=tuple(f["rotation"][i].tolist()), velocity=tuple(f["velocity"][i].tolist()),
            num_pts=int(f["num_pts"][i]), detection_name=f["detection_name"][i],
            attribute_name=f["attribute_name"][i]) for i in range(len(f["detection_name"]))])
    gt_boxes = loaders.filter_eval_boxes(nusc, loaders.add_center_dist(nusc, gt_boxes), cfg.class_range)
    pred_boxes = loaders.filter_eval_boxes(nusc, loaders.add_center_dist(nusc, pred_boxes), cfg.class_range)
    metrics = DetectionMetrics(cfg)
    for name in cfg.class_names:
        for th in cfg.dist_ths:
            md = accumulate(gt_boxes, pred_boxes, name, cfg.dist_fcn_callable, th)
            metrics.add_label_ap(name, th, calc_ap(md, cfg.min_recall, cfg.min_precision))
            if th != cfg.dist_th_tp:
                continue
            for m in TP_METRICS:  # DetectionEval.evaluate's exclusions
                if (name == "traffic_cone" and m in ("attr_err", "vel_err", "orient_err")) or \
                        (name == "barrier" and m in ("attr_err", "vel_err")):
                    metrics.add_label_tp(name, m, np.nan)
                else:
                    metrics.add_label_tp(name, m, calc_tp(md, cfg.min_recall, m))
    return metrics


def max_abs_diff(ours, ref):
    """Largest |ours - devkit| over every class AP (each threshold), TP error, mAP and NDS."""
    worst = max(abs(ours["mAP"] - ref.mean_ap), abs(ours["NDS"] - ref.nd_score))
    for name in DETECTION_NAMES:
        for th in (0.5, 1.0, 2.0, 4.0):
            worst = max(worst, abs(ours["label_aps"][name][th] - ref.get_label_ap(name, th)))
        for m in TP_METRICS:
            a, b = ours["label_tp_errors"][name][m], ref.get_label_tp(name, m)
            assert np.isnan(a) == np.isnan(b), (name, m, a, b)
            if not np.isnan(a):
                worst = max(worst, abs(a - b))
    for m in TP_METRICS:
        worst = max(worst, abs(ours["tp_errors"][m] - ref.tp_errors[m]))
    return worst


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_equals_devkit_on_generated_scenes(seed, tmp_path):
    gt, pred, ego, racks = generate_scenes(seed, num_samples=8, gt_per_sample=60)
    ref = devkit_metrics(gt, pred, ego, racks, tmp_path)
    ours = nuscenes_detection_metrics(gt, pred, ego, bike_racks=racks)
    assert max_abs_diff(ours, ref) < 1e-4
    # The submission file's record lists evaluate exactly like the arrays they came from.
    records, _ = load_submission(tmp_path / "results.json")
    assert nuscenes_detection_metrics(gt, records, ego, bike_racks=racks)["label_aps"] == ours["label_aps"]
    # The scenes exercise the whole range: some matches at every threshold, not everything perfect.
    assert 0.05 < ours["mAP"] < 0.9 and 0.05 < ours["NDS"] < 0.9
    assert sum(ours["num_gt"].values()) < sum(len(g["detection_name"]) for g in gt.values())


def test_equals_devkit_with_many_boxes_per_sample(tmp_path):
    gt, pred, ego, racks = generate_scenes(7, num_samples=3, gt_per_sample=250)
    ref = devkit_metrics(gt, pred, ego, racks, tmp_path)
    assert max_abs_diff(nuscenes_detection_metrics(gt, pred, ego, bike_racks=racks), ref) < 1e-4


# ---------------------------------------------------------------------------------------------
# Hand-computed cases.
# ---------------------------------------------------------------------------------------------
def _one_of_each(centre=(100.0, 200.0, 1.0)):
    """One GT box per class, 5 m apart, each with velocity and (where the class has them) an attribute."""
    n = len(DETECTION_NAMES)
    c = np.asarray(centre)
    attrs = {"car": "vehicle.parked", "truck": "vehicle.moving", "bus": "vehicle.moving", "trailer": "vehicle.parked",
             "construction_vehicle": "vehicle.stopped", "pedestrian": "pedestrian.moving",
             "motorcycle": "cycle.with_rider", "bicycle": "cycle.without_rider"}
    return {"translation": c + np.column_stack([np.arange(n) * 5.0 - 20, np.full(n, 3.0), np.zeros(n)]),
            "size": np.array([SIZES[k] for k in DETECTION_NAMES]),
            "rotation": yaw_to_quaternion(np.linspace(-2, 2, n)),
            "velocity": np.column_stack([np.arange(n), -np.ones(n)]),
            "detection_name": list(DETECTION_NAMES), "attribute_name": [attrs.get(k, "") for k in DETECTION_NAMES],
            "num_pts": np.full(n, 10)}


def _as_pred(g, scores=None):
    p = {k: (v.copy() if isinstance(v, np.ndarray) else list(v)) for k, v in g.items() if k != "num_pts"}
    p["detection_score"] = np.linspace(0.9, 0.5, len(g["detection_name"])) if scores is None else scores
    return p


EGO = {"s0": np.array([100.0, 200.0, 0.0])}


def test_perfect_predictions_give_map_and_nds_one():
    g = _one_of_each()
    res = nuscenes_detection_metrics({"s0": g}, {"s0": _as_pred(g)}, EGO)
    assert res["mAP"] == pytest.approx(1.0) and res["NDS"] == pytest.approx(1.0)
    for name in DETECTION_NAMES:
        assert all(v == pytest.approx(1.0) for v in res["label_aps"][name].values())
    assert all(v == pytest.approx(0.0, abs=1e-12) for v in res["tp_errors"].values())
    assert np.isnan(res["label_tp_errors"]["traffic_cone"]["orient_err"])
    assert np.isnan(res["label_tp_errors"]["barrier"]["vel_err"])
    assert res["label_tp_errors"]["barrier"]["orient_err"] == 0.0


def test_translation_offset_follows_nds_formula():
    g = _one_of_each()
    p = _as_pred(g)
    p["translation"][:, 0] += 0.3  # every box 0.3 m off: matched at all thresholds, ATE = 0.3
    res = nuscenes_detection_metrics({"s0": g}, {"s0": p}, EGO)
    assert res["mAP"] == pytest.approx(1.0)
    assert res["tp_errors"]["trans_err"] == pytest.approx(0.3)
    assert res["NDS"] == pytest.approx((5 * 1.0 + (1 - 0.3) + 4 * 1.0) / 10)


def _single_car():
    g = {k: (v[:1] if isinstance(v, np.ndarray) else v[:1]) for k, v in _one_of_each().items()}
    return g


def test_single_false_positive_before_the_true_positive():
    g = _single_car()
    p = _as_pred(g, scores=np.array([0.4]))
    fp = _as_pred(g, scores=np.array([0.9]))
    fp["translation"][:, 0] += 10.0  # 10 m away: an FP at every threshold, ranked first
    both = {k: (np.concatenate([fp[k], p[k]]) if isinstance(p[k], np.ndarray) else fp[k] + p[k]) for k in p}
    res = nuscenes_detection_metrics({"s0": g}, {"s0": both}, EGO)
    # precision 0 at recall 0, 1/2 at recall 1; linear in between: p(r) = r / 2. AP = mean over
    # r = 0.11 .. 1.00 of max(0, r/2 - 0.1) / 0.9 = (0.5 * 48.4 - 8) / 90 / 0.9 = 0.2.
    assert all(v == pytest.approx(0.2) for v in res["label_aps"]["car"].values())
    assert res["mAP"] == pytest.approx(0.02)  # the other 9 classes have no GT: AP 0
    # The car's TP is exact (errors 0); the other classes count 1; cone/barrier exclusions apply.
    expect = {"trans_err": 9 / 10, "scale_err": 9 / 10, "orient_err": 8 / 9, "vel_err": 7 / 8, "attr_err": 7 / 8}
    for m, v in expect.items():
        assert res["tp_errors"][m] == pytest.approx(v)
    assert res["NDS"] == pytest.approx((5 * 0.02 + sum(1 - v for v in expect.values())) / 10)


def test_known_tp_errors_and_barrier_symmetry():
    g = _one_of_each()
    p = _as_pred(g)
    car, barrier = 0, DETECTION_NAMES.index("barrier")
    g["velocity"][car] = [1.0, 0.0]
    p["velocity"][car] = [4.0, 4.0]  # |(3, 4)| = 5 m/s
    p["size"][car] = g["size"][car] * [0.5, 1.0, 1.0]  # aligned IoU 0.5
    yaw = quaternion_yaw(g["rotation"])
    p["rotation"][car] = yaw_to_quaternion(yaw[car:car + 1] + 0.5)[0]
    p["attribute_name"][car] = "vehicle.moving"  # GT is parked
    p["rotation"][barrier] = yaw_to_quaternion(yaw[barrier:barrier + 1] + np.pi)[0]  # same barrier, flipped
    res = nuscenes_detection_metrics({"s0": g}, {"s0": p}, EGO)
    car_err = res["label_tp_errors"]["car"]
    assert car_err["vel_err"] == pytest.approx(5.0)
    assert car_err["scale_err"] == pytest.approx(0.5)
    assert car_err["orient_err"] == pytest.approx(0.5)
    assert car_err["attr_err"] == pytest.approx(1.0)
    assert car_err["trans_err"] == pytest.approx(0.0)
    assert res["label_tp_errors"]["barrier"]["orient_err"] == pytest.approx(0.0, abs=1e-9)
    # mAVE = (5 + 0 * 7) / 8 over the 8 classes with velocity; its score clips at 0 only above 1.
    assert res["tp_errors"]["vel_err"] == pytest.approx(5 / 8)
    assert res["tp_scores"]["vel_err"] == pytest.approx(3 / 8)


def test_nan_gt_velocity_is_ignored_and_all_nan_counts_one():
    g = _single_car()
    g["velocity"][:] = np.nan
    res = nuscenes_detection_metrics({"s0": g}, {"s0": _as_pred(g)}, EGO)
    assert res["label_tp_errors"]["car"]["vel_err"] == 1.0  # no velocity to compare: error 1
    assert res["label_aps"]["car"][0.5] == pytest.approx(1.0)


def test_range_zero_point_and_bike_rack_filters():
    g = _one_of_each()
    g["num_pts"][0] = 0  # the car has no LiDAR/radar point: removed from GT, its prediction becomes an FP
    ped = DETECTION_NAMES.index("pedestrian")
    g["translation"][ped] = EGO["s0"] + [0.0, 45.0, 1.0]  # beyond the 40 m pedestrian range
    bike = DETECTION_NAMES.index("bicycle")
    rack = {"translation": g["translation"][bike:bike + 1] + [0.4, 0.2, 0.0], "size": np.array([[2.0, 3.0, 2.0]]),
            "rotation": yaw_to_quaternion(np.array([0.3]))}
    p = _as_pred(g)
    res = nuscenes_detection_metrics({"s0": g}, {"s0": p}, EGO, bike_racks={"s0": rack})
    assert res["num_gt"]["car"] == 0 and res["num_pred"]["car"] == 1 and res["label_aps"]["car"][4.0] == 0.0
    assert res["num_gt"]["pedestrian"] == 0 and res["num_pred"]["pedestrian"] == 0
    assert res["num_gt"]["bicycle"] == 0 and res["num_pred"]["bicycle"] == 0
    assert res["label_aps"]["truck"][0.5] == pytest.approx(1.0)
    without_rack = nuscenes_detection_metrics({"s0": g}, {"s0": p}, EGO)
    assert without_rack["num_gt"]["bicycle"] == 1 and without_rack["label_aps"]["bicycle"][0.5] == pytest.approx(1.0)


def test_bad_input_is_rejected_with_a_clear_error():
    g = _one_of_each()
    p = _as_pred(g)
    with pytest.raises(ValueError, match="missing"):
        nuscenes_detection_metrics({"s0": g, "s1": g}, {"s0": p}, {**EGO, "s1": EGO["s0"]})
    with pytest.raises(ValueError, match="ego_translation"):
        nuscenes_detection_metrics({"s0": g}, {"s0": p}, {})
    bad = _as_pred(g)
    bad["detection_name"][2] = "van"
    with pytest.raises(ValueError, match="unknown detection_name 'van'"):
        nuscenes_detection_metrics({"s0": g}, {"s0": bad}, EGO)
    bad = _as_pred(g)
    bad["size"][1, 0] = 0.0
    with pytest.raises(ValueError, match="size must be > 0"):
        nuscenes_detection_metrics({"s0": g}, {"s0": bad}, EGO)
    bad = _as_pred(g)
    bad["detection_score"] = bad["detection_score"][:3]
    with pytest.raises(ValueError, match="detection_score must have shape"):
        nuscenes_detection_metrics({"s0": g}, {"s0": bad}, EGO)
    many = {k: (np.repeat(v, 51, axis=0) if isinstance(v, np.ndarray) else v * 51) for k, v in p.items()}
    with pytest.raises(ValueError, match="at most 500"):
        nuscenes_detection_metrics({"s0": g}, {"s0": many}, EGO)


# ---------------------------------------------------------------------------------------------
# Conversion from pc3d LiDAR boxes, submission JSON, mmengine metric.
# ---------------------------------------------------------------------------------------------
def _pose(rng, tilt=0.05):
    """A random lidar2global: yaw anywhere, small roll/pitch, translation in the city."""
    a, b, c = rng.uniform(-np.pi, np.pi), rng.uniform(-tilt, tilt), rng.uniform(-tilt, tilt)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rx = np.array([[1, 0, 0], [0, np.cos(c), -np.sin(c)], [0, np.sin(c), np.cos(c)]])
    m = np.eye(4)
    m[:3, :3] = rz @ ry @ rx
    m[:3, 3] = rng.uniform(-1000, 1000, 3)
    return m


def _corners(centre, dims_lwh, rot):
    """(M, 8, 3) corners of boxes with local x along the length."""
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
    local = signs[None] * dims_lwh[:, None, :] / 2
    return np.einsum("mij,mkj->mki", rot, local) + centre[:, None, :]


def test_lidar_to_global_moves_the_box_corners_rigidly():
    from pc3d.geometry.nuscenes import quaternion_to_matrix

    rng = np.random.default_rng(0)
    m = _pose(rng)
    boxes = np.column_stack([rng.uniform(-50, 50, (20, 3)), rng.uniform(0.5, 5, (20, 3)),
                             rng.uniform(-np.pi, np.pi, 20), rng.normal(0, 5, (20, 2))])
    glob = lidar_boxes_to_global(boxes, m)
    c = np.cos(boxes[:, 6])
    s = np.sin(boxes[:, 6])
    rot_l = np.zeros((20, 3, 3))
    rot_l[:, 0, 0], rot_l[:, 0, 1], rot_l[:, 1, 0], rot_l[:, 1, 1], rot_l[:, 2, 2] = c, -s, s, c, 1
    lidar_corners = _corners(boxes[:, :3], boxes[:, 3:6], rot_l)
    expect = lidar_corners @ m[:3, :3].T + m[:3, 3]
    size = glob["size"]
    got = _corners(glob["translation"], size[:, [1, 0, 2]], quaternion_to_matrix(glob["rotation"]))
    np.testing.assert_allclose(got, expect, atol=1e-8)
    vel = np.column_stack([boxes[:, 7:9], np.zeros(20)]) @ m[:3, :3].T
    np.testing.assert_allclose(glob["velocity"], vel[:, :2], atol=1e-10)
    back = global_boxes_to_lidar(glob["translation"], glob["size"], glob["rotation"], glob["velocity"], m)
    flat = _pose(rng, tilt=0.0)  # the velocity round trip is exact only when z is kept level
    back_flat = global_boxes_to_lidar(**{k: v for k, v in lidar_boxes_to_global(boxes, flat).items()},
                                      lidar2global=flat)
    np.testing.assert_allclose(back[:, :6], boxes[:, :6], atol=1e-8)
    np.testing.assert_allclose(np.cos(back[:, 6] - boxes[:, 6]), 1.0, atol=1e-10)
    np.testing.assert_allclose(back_flat[:, 7:9], boxes[:, 7:9], atol=1e-8)
    with pytest.raises(ValueError, match="proper rotation"):
        lidar_boxes_to_global(boxes, np.diag([1.0, 1.0, -1.0, 1.0]))


def test_quaternion_yaw_equals_devkit():
    utils = pytest.importorskip("nuscenes.eval.common.utils", reason="nuscenes-devkit is not installed (a test extra)")
    from pyquaternion import Quaternion

    q = np.random.default_rng(1).normal(size=(200, 4)) * 3  # arbitrary, non-unit, tilted
    ours = quaternion_yaw(q)
    ref = np.array([utils.quaternion_yaw(Quaternion(v)) for v in q])
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_submission_json_has_the_official_layout(tmp_path):
    rng = np.random.default_rng(3)
    boxes = np.column_stack([rng.uniform(-30, 30, (7, 3)), rng.uniform(0.5, 4, (7, 3)),
                             rng.uniform(-3, 3, 7), rng.normal(0, 2, (7, 2))])
    fields = lidar_detections_to_fields(boxes, rng.uniform(0, 1, 7), [0, 5, 7, 8, 9, 1, 6], _pose(rng), max_boxes=5)
    assert len(fields["detection_name"]) == 5 and np.all(np.diff(fields["detection_score"]) <= 0)
    path = write_submission(tmp_path / "sub.json", {"tok": fields})
    data = json.loads(path.read_text())
    assert set(data) == {"meta", "results"} and data["meta"]["use_lidar"] is True
    rec = data["results"]["tok"][0]
    assert set(rec) == {"sample_token", "translation", "size", "rotation", "velocity", "detection_name",
                        "detection_score", "attribute_name"}
    assert len(rec["translation"]) == 3 and len(rec["rotation"]) == 4 and len(rec["velocity"]) == 2
    results, meta = load_submission(path)
    assert results["tok"] == fields_to_records("tok", fields)
    with pytest.raises(ValueError, match="limit is 3"):
        write_submission(tmp_path / "x.json", {"tok": fields}, max_boxes_per_sample=3)


def test_default_attributes_follow_class_and_speed():
    names = ["car", "car", "pedestrian", "bicycle", "barrier", "traffic_cone"]
    vel = np.array([[0.0, 0.1], [3.0, 0.0], [1.0, 0.0], [0.0, 0.0], [5.0, 0.0], [0.0, 0.0]])
    assert default_attributes(names, vel) == ["vehicle.parked", "vehicle.moving", "pedestrian.moving",
                                              "cycle.without_rider", "", ""]


def _lidar_samples(seed):
    """Two samples of pc3d LiDAR-frame GT and predictions with their poses, as a dataloader would give."""
    rng = np.random.default_rng(seed)
    samples = []
    for s in range(2):
        lidar2ego, ego2global = _pose(rng, tilt=0.0), _pose(rng, tilt=0.01)
        lidar2ego[:3, 3] = [0.9, 0.0, 1.8]
        m = 12
        gt = np.column_stack([rng.uniform(-35, 35, (m, 2)), rng.uniform(-1, 1, m), rng.uniform(0.5, 5, (m, 3)),
                              rng.uniform(-np.pi, np.pi, m), rng.normal(0, 3, (m, 2))])
        labels = rng.permutation(np.arange(m) % 10)  # every class present
        pred = gt + np.concatenate([rng.normal(0, 0.4, (m, 3)), np.zeros((m, 3)), rng.normal(0, 0.1, (m, 1)),
                                    rng.normal(0, 0.5, (m, 2))], axis=1)
        samples.append(dict(sample_token=f"tok{s}", lidar2ego=lidar2ego, ego2global=ego2global, gt_boxes=gt,
                            gt_labels=labels, gt_num_points=np.full(m, 20), pred_boxes=pred,
                            pred_scores=rng.uniform(0.1, 1, m), pred_labels=labels))
    return samples


def test_nuscenes_metric_class_end_to_end(tmp_path):
    from pc3d.registry import METRICS

    assert METRICS.get("NuScenesMetric") is NuScenesMetric
    samples = _lidar_samples(0)
    metric = NuScenesMetric(jsonfile_prefix=str(tmp_path / "out"))
    metric.process({}, samples[:1])
    metric.process({}, samples[1:])
    out = metric.compute_metrics(metric.results)
    # The same boxes through the functional API (global frame) give the same numbers.
    gt, pred, ego = {}, {}, {}
    for d in samples:
        l2g = d["ego2global"] @ d["lidar2ego"]
        pred[d["sample_token"]] = lidar_detections_to_fields(d["pred_boxes"], d["pred_scores"], d["pred_labels"], l2g)
        g = lidar_detections_to_fields(d["gt_boxes"], np.zeros(12), d["gt_labels"], l2g,
                                       attributes=[""] * 12)
        gt[d["sample_token"]] = dict(g, num_pts=d["gt_num_points"])
        ego[d["sample_token"]] = d["ego2global"][:3, 3]
    ref = nuscenes_detection_metrics(gt, pred, ego)
    assert out["mAP"] == pytest.approx(ref["mAP"]) and out["NDS"] == pytest.approx(ref["NDS"])
    assert out["car_AP_dist_0.5"] == pytest.approx(ref["label_aps"]["car"][0.5])
    assert 0.0 < out["mAP"] < 1.0 and "mATE" in out
    results, _ = load_submission(tmp_path / "out" / "results_nusc.json")
    assert set(results) == {"tok0", "tok1"}
    # Predictions equal to the GT (attributes included) score mAP 1.
    perfect = NuScenesMetric()
    for d in samples:
        names = [DETECTION_NAMES[i] for i in d["gt_labels"]]
        attrs = default_attributes(names, d["gt_boxes"][:, 7:9])
        perfect.process({}, [dict(d, pred_boxes=d["gt_boxes"], pred_scores=np.linspace(1, 0.5, 12),
                                  gt_attributes=attrs, pred_attributes=attrs)])
    assert perfect.compute_metrics(perfect.results)["mAP"] == pytest.approx(1.0)
    no_vel = NuScenesMetric()
    no_vel.process({}, [dict(samples[0], gt_boxes=samples[0]["gt_boxes"][:, :7])])
    assert np.isnan(no_vel.results[0]["gt"]["velocity"]).all()  # unknown, so AVE ignores it
    with pytest.raises(ValueError, match="lacks 'ego2global'"):
        NuScenesMetric().process({}, [{k: v for k, v in samples[0].items() if k != "ego2global"}])


def test_table_lists_every_class():
    g = _one_of_each()
    text = format_nuscenes_table(nuscenes_detection_metrics({"s0": g}, {"s0": _as_pred(g)}, EGO))
    assert all(name in text for name in DETECTION_NAMES) and "NDS: 1.0000" in text
