"""Waymo AP/APH: hand-checked cases, the fast matcher vs a per-cut-off Hungarian, and the official numbers.

Hand computations follow the official rules (see pc3d/evaluation/ap.py): cut-offs 0.00..1.00; at a
cut-off with recall 0 the precision is set to 1; AP is the trapezoid area under the running-max
precision over recall, with filler points every 0.05 of recall, and the recall-0 point taking the
precision of its neighbour.
"""
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from pc3d.evaluation import (WaymoMetric, flatten_waymo_metrics, format_waymo_table,
                             waymo_detection_metrics)
from pc3d.evaluation import matching
from pc3d.evaluation.waymo import DEFAULT_SCORE_CUTOFFS
from pc3d.ops import iou_3d_rotated

# The official package's outputs on 10 cases, shipped with the repository (provenance in its README).
GOLDEN = Path(__file__).resolve().parent / "data" / "waymo_metric_golden"
VEH, PED, CYC = 1, 2, 4
SIZE = {VEH: (4.0, 2.0, 1.5), PED: (0.8, 0.8, 1.8), CYC: (1.8, 0.6, 1.7)}
KEYS = [f"OBJECT_TYPE_TYPE_{n}_LEVEL_{lv}" for n in ("VEHICLE", "PEDESTRIAN", "CYCLIST") for lv in (1, 2)]


def box(t, x, y=0.0, heading=0.0):
    length, width, height = SIZE[t]
    return [x, y, height / 2, length, width, height, heading]


def gt_dict(rows):
    """rows: (frame, type, box, num_points)."""
    return {"frame_id": np.array([r[0] for r in rows], np.int64), "type": np.array([r[1] for r in rows]),
            "bbox": np.array([r[2] for r in rows], np.float32).reshape(-1, 7),
            "num_points": np.array([r[3] for r in rows], np.int64),
            "difficulty": np.array([2 if r[3] <= 5 else 1 for r in rows], np.int64)}


def pred_dict(rows):
    """rows: (frame, type, box, score)."""
    return {"frame_id": np.array([r[0] for r in rows], np.int64), "type": np.array([r[1] for r in rows]),
            "bbox": np.array([r[2] for r in rows], np.float32).reshape(-1, 7),
            "score": np.array([r[3] for r in rows], np.float32)}


def scene():
    """Three frames with every class, all LEVEL_1 (50 points)."""
    rows = []
    for f in range(3):
        for i, t in enumerate((VEH, VEH, PED, CYC)):
            rows.append((f, t, box(t, 10.0 * i + f, 3.0 * f, heading=0.4 * i - 1.0), 50))
    return rows


def test_gt_as_prediction_is_perfect():
    rows = scene()
    res = waymo_detection_metrics(gt_dict(rows), pred_dict([(f, t, b, 0.9) for f, t, b, _ in rows]))
    for k in KEYS + ["MEAN_LEVEL_1", "MEAN_LEVEL_2"]:
        assert res[k]["AP"] == pytest.approx(1.0, abs=1e-6) and res[k]["APH"] == pytest.approx(1.0, abs=1e-6)


def test_heading_off_by_pi_keeps_ap_and_zeroes_aph():
    rows = scene()
    flipped = [(f, t, b[:6] + [b[6] - math.pi], 0.9) for f, t, b, _ in rows]
    res = waymo_detection_metrics(gt_dict(rows), pred_dict(flipped))
    for k in KEYS:
        assert res[k]["AP"] == pytest.approx(1.0, abs=1e-6)
        assert res[k]["APH"] == pytest.approx(0.0, abs=1e-6)


def test_boxes_shifted_beyond_threshold_score_zero():
    # Vehicle 4 m long shifted 1 m along its length: IoU 3/5 = 0.6 < 0.7. Pedestrian 0.8 m shifted 0.3 m:
    # IoU 0.5/1.1 = 0.45 < 0.5. Cyclist 1.8 m shifted 0.7 m: IoU 1.1/2.5 = 0.44 < 0.5.
    shift = {VEH: 1.0, PED: 0.3, CYC: 0.7}
    rows = scene()
    moved = [(f, t, [b[0] + shift[t] * math.cos(b[6]), b[1] + shift[t] * math.sin(b[6])] + b[2:], 0.9)
             for f, t, b, _ in rows]
    res = waymo_detection_metrics(gt_dict(rows), pred_dict(moved))
    for k in KEYS:
        assert res[k]["AP"] == 0.0 and res[k]["APH"] == 0.0
    # The same boxes match once the thresholds are below their IoUs, so the zero is the threshold's doing.
    low = waymo_detection_metrics(gt_dict(rows), pred_dict(moved), iou_thresholds={VEH: 0.55, PED: 0.4, CYC: 0.4})
    for k in KEYS:
        assert low[k]["AP"] == pytest.approx(1.0, abs=1e-6)


def test_duplicate_prediction_is_false_positive():
    # One frame, vehicle GTs G1, G2. Predictions: G1 at 0.9, a duplicate of G1 at 0.8, G2 at 0.7.
    #   cut-offs 0.91..1.00: nothing kept -> recall 0 (precision 1)
    #   cut-offs 0.81..0.90: G1 -> TP 1, FP 0, FN 1: P 1, R 0.5
    #   cut-offs 0.71..0.80: G1 + dup -> TP 1, FP 1 (the duplicate), FN 1: P 0.5, R 0.5
    #   cut-offs 0.00..0.70: all -> TP 2, FP 1: P 2/3, R 1
    # Envelope: P 2/3 on recall (0.55, 1], a trapezoid (2/3 + 1)/2 over [0.5, 0.55], P 1 on [0, 0.5]:
    #   AP = 0.45 * 2/3 + 0.05 * 5/6 + 0.5 = 0.841667 (it would be 1 without the duplicate).
    gts = [(0, VEH, box(VEH, 0.0), 50), (0, VEH, box(VEH, 20.0), 50)]
    preds = [(0, VEH, box(VEH, 0.0), 0.9), (0, VEH, box(VEH, 0.0), 0.8), (0, VEH, box(VEH, 20.0), 0.7)]
    res = waymo_detection_metrics(gt_dict(gts), pred_dict(preds))
    expected = 0.45 * 2 / 3 + 0.05 * 5 / 6 + 0.5
    for lv in (1, 2):
        r = res[f"OBJECT_TYPE_TYPE_VEHICLE_LEVEL_{lv}"]
        assert r["AP"] == pytest.approx(expected, abs=1e-5) and r["APH"] == pytest.approx(expected, abs=1e-5)
    curves = waymo_detection_metrics(gt_dict(gts), pred_dict(preds), return_curves=True)
    veh = curves["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"]
    assert (veh["tp"][[0, 70, 71, 80, 81, 90, 91]].tolist(), veh["fp"][[0, 70, 71, 80, 81, 90, 91]].tolist()) == (
        [2, 2, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0, 0])
    no_dup = waymo_detection_metrics(gt_dict(gts), pred_dict([preds[0], preds[2]]))
    assert no_dup["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_1"]["AP"] == pytest.approx(1.0, abs=1e-6)


def test_equal_iou_tie_goes_to_earlier_prediction_like_official_hungarian():
    # One vehicle GT; A = the GT box at score 0.8, B = the same box flipped by pi at 0.9 (same IoU).
    # The official Hungarian serves predictions in input order, so with both kept the first one listed
    # keeps the GT. A listed first: cut-offs <= 0.80 match A (heading accuracy 1) and B is an FP:
    # P_ha 0.5 at R 1; cut-offs 0.81..0.90 match B alone: P_ha 0 at R 1 -> APH 0.5 (AP 1 either way).
    # B listed first: B keeps the GT at every cut-off -> P_ha 0 -> APH 0.
    gt = gt_dict([(0, VEH, box(VEH, 0.0), 50)])
    a, b = (0, VEH, box(VEH, 0.0), 0.8), (0, VEH, box(VEH, 0.0, heading=-math.pi), 0.9)
    res = waymo_detection_metrics(gt, pred_dict([a, b]))["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_1"]
    assert res["AP"] == pytest.approx(1.0, abs=1e-6) and res["APH"] == pytest.approx(0.5, abs=1e-6)
    res = waymo_detection_metrics(gt, pred_dict([b, a]))["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_1"]
    assert res["AP"] == pytest.approx(1.0, abs=1e-6) and res["APH"] == pytest.approx(0.0, abs=1e-6)


def test_level2_includes_level1_boxes():
    # A LEVEL_1 vehicle (50 points), a LEVEL_2 vehicle (3 points) and a 0-point vehicle (not evaluated).
    gts = [(0, VEH, box(VEH, 0.0), 50), (0, VEH, box(VEH, 20.0), 3), (0, VEH, box(VEH, 40.0), 0)]
    key1, key2 = "OBJECT_TYPE_TYPE_VEHICLE_LEVEL_1", "OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"
    # Only the LEVEL_1 box found: L1 recall 1 -> AP 1; L2 recall 1/2 (precision 1) -> AP 0.5.
    res = waymo_detection_metrics(gt_dict(gts), pred_dict([(0, VEH, box(VEH, 0.0), 0.9)]))
    assert res[key1]["AP"] == pytest.approx(1.0, abs=1e-6)
    assert res[key2]["AP"] == pytest.approx(0.5, abs=1e-6)
    # Both found: 1 at both levels; the missed 0-point box is no false negative.
    both = [(0, VEH, box(VEH, 0.0), 0.9), (0, VEH, box(VEH, 20.0), 0.9)]
    res = waymo_detection_metrics(gt_dict(gts), pred_dict(both))
    assert res[key1]["AP"] == pytest.approx(1.0, abs=1e-6) and res[key2]["AP"] == pytest.approx(1.0, abs=1e-6)
    # Official rule: a match to a LEVEL_2 box is a TP at LEVEL_1 too (only *missed* LEVEL_2 boxes are
    # ignored there). Only the LEVEL_2 box found: L1 TP 1, FN 1 (the LEVEL_1 box) -> AP 0.5.
    res = waymo_detection_metrics(gt_dict(gts), pred_dict([(0, VEH, box(VEH, 20.0), 0.9)]))
    assert res[key1]["AP"] == pytest.approx(0.5, abs=1e-6) and res[key2]["AP"] == pytest.approx(0.5, abs=1e-6)


def test_num_points_rule_overrides_difficulty():
    # Marked LEVEL_1 but only 5 points -> LEVEL_2: missing it costs nothing at LEVEL_1.
    gt = gt_dict([(0, PED, box(PED, 0.0), 50), (0, PED, box(PED, 5.0), 5)])
    gt["difficulty"][:] = 1
    res = waymo_detection_metrics(gt, pred_dict([(0, PED, box(PED, 0.0), 0.9)]))
    assert res["OBJECT_TYPE_TYPE_PEDESTRIAN_LEVEL_1"]["AP"] == pytest.approx(1.0, abs=1e-6)
    assert res["OBJECT_TYPE_TYPE_PEDESTRIAN_LEVEL_2"]["AP"] == pytest.approx(0.5, abs=1e-6)


def test_empty_predictions_and_empty_inputs_give_zero():
    res = waymo_detection_metrics(gt_dict(scene()), pred_dict([]))
    assert all(res[k]["AP"] == 0.0 and res[k]["APH"] == 0.0 for k in KEYS)
    res = waymo_detection_metrics(gt_dict([]), pred_dict([]))
    assert all(res[k]["AP"] == 0.0 for k in KEYS) and res["MEAN_LEVEL_2"]["AP"] == 0.0


def test_frames_without_ground_truth_contribute_false_positives():
    # Frame 0: a vehicle found exactly at 0.9. Frame 1 (no GT at all): a vehicle predicted at 0.95.
    #   cut-offs 0.91..0.95: FP only -> recall 0 (precision 1); cut-offs <= 0.90: TP 1, FP 1 -> P 0.5, R 1.
    #   Curve {R 0: P 1, R 1: P 0.5}; the recall-0 point takes P 0.5 -> AP 0.5.
    gts = [(0, VEH, box(VEH, 0.0), 50)]
    preds = [(0, VEH, box(VEH, 0.0), 0.9), (1, VEH, box(VEH, 0.0), 0.95)]
    res = waymo_detection_metrics(gt_dict(gts), pred_dict(preds))
    assert res["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_1"]["AP"] == pytest.approx(0.5, abs=1e-6)
    # The same false positive below the true positive's score leaves the envelope at 1.
    preds[1] = (1, VEH, box(VEH, 0.0), 0.5)
    res = waymo_detection_metrics(gt_dict(gts), pred_dict(preds))
    assert res["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_1"]["AP"] == pytest.approx(1.0, abs=1e-6)
    # String frame ids work the same way as ints.
    gt, pred = gt_dict(gts), pred_dict(preds)
    gt["frame_id"], pred["frame_id"] = np.array(["a"]), np.array(["a", "b"])
    assert waymo_detection_metrics(gt, pred)["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_1"]["AP"] == pytest.approx(1.0, abs=1e-6)


def test_score_equal_to_cutoff_is_kept():
    levels = matching.presence_levels(np.array([0.0, 0.5, 0.505, 1.0], np.float32), DEFAULT_SCORE_CUTOFFS)
    assert levels.tolist() == [1, 51, 51, 101]  # kept at cut-off indices [0, level)


def test_injected_iou_fn_is_used():
    rows = scene()
    far = [(f, t, [b[0] + 100.0] + b[1:], 0.9) for f, t, b, _ in rows]
    res = waymo_detection_metrics(gt_dict(rows), pred_dict(far), iou_fn=lambda a, b: np.ones((len(a), len(b))))
    assert res["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_1"]["AP"] == pytest.approx(1.0, abs=1e-6)


def _torch_iou(a, b):
    return iou_3d_rotated(torch.from_numpy(np.asarray(a, np.float64)),
                          torch.from_numpy(np.asarray(b, np.float64))).numpy()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_component_matching_equals_hungarian_per_cutoff(seed, monkeypatch):
    # Crowded frames and a low threshold give components with several predictions and ground truths,
    # exercising both the single-edge fast path and the per-score-level Hungarian path.
    rng = np.random.default_rng(seed)
    threshold, frames = 0.15, []
    p_boxes, g_boxes, offset_p, offset_g = [], [], 0, 0
    for _ in range(6):
        ng, npd = rng.integers(0, 9), rng.integers(0, 12)
        g = np.c_[rng.uniform(-4, 4, (ng, 2)), np.zeros(ng), rng.uniform(1, 3, (ng, 3)), rng.uniform(-3, 3, ng)]
        src = g[rng.integers(0, max(ng, 1), npd)] if ng else np.zeros((npd, 7)) + [0, 0, 0, 2, 2, 2, 0]
        p = src + np.c_[rng.normal(0, 0.6, (npd, 3)), rng.normal(0, 0.2, (npd, 3)), rng.normal(0, 0.5, npd)]
        p[:, 3:6] = np.abs(p[:, 3:6]) + 0.3
        frames.append((np.arange(npd) + offset_p, np.arange(ng) + offset_g, _torch_iou(p, g)))
        p_boxes.append(p), g_boxes.append(g)
        offset_p, offset_g = offset_p + npd, offset_g + ng
    p_boxes, g_boxes = np.concatenate(p_boxes), np.concatenate(g_boxes)
    scores = np.round(rng.uniform(0, 1, len(p_boxes)), 2).astype(np.float32)  # ties and exact cut-offs
    levels = matching.presence_levels(scores, DEFAULT_SCORE_CUTOFFS)
    difficulty = rng.integers(1, 3, len(g_boxes))
    ep, eg, w = [], [], []
    for pi, gi, iou in frames:
        r, c = np.nonzero(iou >= threshold)
        ep.append(pi[r]), eg.append(gi[c]), w.append(np.round(iou[r, c] * matching.IOU_QUANTUM).astype(np.int64))
    calls = []
    real = matching.linear_sum_assignment
    monkeypatch.setattr(matching, "linear_sum_assignment", lambda *a, **k: calls.append(1) or real(*a, **k))
    fast = matching.cutoff_measurements(np.concatenate(ep), np.concatenate(eg), np.concatenate(w), levels,
                                        p_boxes[:, 6], g_boxes[:, 6], difficulty, 101)
    assert calls, "no component with several predictions and ground truths: the Hungarian path went untested"
    slow = matching.cutoff_measurements_naive(frames, levels, p_boxes[:, 6], g_boxes[:, 6], difficulty, threshold, 101)
    for k in ("tp", "tp_l1", "num_pred"):
        np.testing.assert_array_equal(fast[k], slow[k], err_msg=k)
    np.testing.assert_allclose(fast["sum_ha"], slow["sum_ha"], atol=1e-9)


def test_metrics_benchmark_baseline_agrees_with_the_metric():
    """The 'metrics' benchmark suite's baseline (a Hungarian per frame, class and cut-off, built on
    ``prepare_gt`` / ``prepare_pred``) gives the fast metric's AP and APH on its own synthetic detector output."""
    from pc3d.benchmark import suite_metrics
    from pc3d.evaluation import waymo_detection_metrics

    gt, pred = suite_metrics.synthetic_frames(3, boxes_per_frame=30, seed=3)
    fast, naive = waymo_detection_metrics(gt, pred), suite_metrics.naive_waymo_metrics(gt, pred)
    suite_metrics._check(fast, naive)
    # Not a trivial agreement: the noisy detections give AP strictly between 0 and 1 for vehicles.
    assert 0.0 < naive["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_1"]["AP"] < 1.0


def _golden_cases():
    return sorted(GOLDEN.glob("*.npz")) if GOLDEN.is_dir() else []


@pytest.mark.skipif(not _golden_cases(), reason=f"golden vectors absent: {GOLDEN}")
@pytest.mark.parametrize("case", _golden_cases(), ids=lambda p: p.stem)
def test_equals_official_waymo_package(case):
    data = np.load(case)
    gt = {k[3:]: data[k] for k in data.files if k.startswith("gt_")}
    pred = {k[5:]: data[k] for k in data.files if k.startswith("pred_")}
    official = json.loads(case.with_suffix(".json").read_text())
    ours = waymo_detection_metrics(gt, pred)
    for key in KEYS:
        for m in ("AP", "APH"):
            assert ours[key][m] == pytest.approx(official[key][m], abs=1e-3), (key, m)


def test_waymo_metric_end_to_end_through_registry():
    from pc3d.registry import METRICS

    metric = METRICS.build(dict(type="WaymoMetric"))
    assert isinstance(metric, WaymoMetric)
    rows = scene()
    samples = []
    for f in range(3):
        fr = [r for r in rows if r[0] == f]
        boxes = torch.tensor([r[2] for r in fr])
        labels = torch.tensor([{VEH: 0, PED: 1, CYC: 2}[r[1]] for r in fr])
        samples.append(dict(frame_id=f"seg_{f}", pred_boxes=boxes, pred_scores=torch.full((len(fr),), 0.8),
                            pred_labels=labels, gt_boxes=boxes, gt_labels=labels,
                            gt_num_points=torch.full((len(fr),), 40),
                            gt_difficulty=torch.ones(len(fr), dtype=torch.long)))
    # A fourth frame where the detector misses its one (LEVEL_1) pedestrian.
    samples.append(dict(frame_id="seg_3", pred_boxes=torch.zeros(0, 7), pred_scores=torch.zeros(0),
                        pred_labels=torch.zeros(0, dtype=torch.long), gt_boxes=torch.tensor([box(PED, 0.0)]),
                        gt_labels=torch.tensor([1]), gt_num_points=torch.tensor([40]), gt_difficulty=torch.tensor([1])))
    metric.process({}, samples[:2])
    metric.process({}, samples[2:])
    out = metric.evaluate(size=4)
    assert out["Vehicle/L1_AP"] == pytest.approx(1.0, abs=1e-6)
    assert out["Cyclist/L2_APH"] == pytest.approx(1.0, abs=1e-6)
    # Pedestrians: 3 of 4 found at precision 1 -> recall 0.75 -> AP 0.75.
    assert out["Pedestrian/L1_AP"] == pytest.approx(0.75, abs=1e-6)
    assert out["mAP_L1"] == pytest.approx((1 + 0.75 + 1) / 3, abs=1e-6)
    table = format_waymo_table(out)
    assert "Pedestrian" in table and "0.7500" in table and "Mean" in table


def test_flatten_keys():
    flat = flatten_waymo_metrics(waymo_detection_metrics(gt_dict(scene()), pred_dict([])))
    assert set(flat) == {f"{c}/L{lv}_{m}" for c in ("Vehicle", "Pedestrian", "Cyclist") for lv in (1, 2)
                         for m in ("AP", "APH")} | {f"{m}_L{lv}" for m in ("mAP", "mAPH") for lv in (1, 2)}


def test_bad_inputs_raise_clear_errors():
    gt, pred = gt_dict(scene()), pred_dict([])
    with pytest.raises(ValueError, match="missing field 'score'"):
        waymo_detection_metrics(gt, {k: v for k, v in pred.items() if k != "score"})
    with pytest.raises(ValueError, match=r"gt\['bbox'\] must be \(N, 7\)"):
        waymo_detection_metrics(dict(gt, bbox=gt["bbox"][:, :5]), pred)
    with pytest.raises(ValueError, match="field 'type' has 3 rows"):
        waymo_detection_metrics(dict(gt, type=gt["type"][:3]), pred)
    with pytest.raises(ValueError, match="ascending"):
        waymo_detection_metrics(gt, pred, score_cutoffs=[0.5, 0.1])
    with pytest.raises(ValueError, match="pred_labels must be"):
        WaymoMetric().compute_metrics([dict(frame_id="x", pred_boxes=np.zeros((1, 7), np.float32),
                                            pred_scores=np.ones(1, np.float32), pred_labels=np.array([3]),
                                            gt_boxes=np.zeros((0, 7), np.float32), gt_labels=np.zeros(0, np.int64),
                                            gt_num_points=np.zeros(0, np.int64), gt_difficulty=np.zeros(0, np.int64))])


def test_road_frames_are_shaped_like_a_detector_on_waymo():
    """The metric-at-scale benchmark's frames: ~60 GT per frame along one road, <= 500 predictions per frame
    (misses, duplicates, background boxes at low scores)."""
    from pc3d.benchmark.suite_metrics import road_frames

    gt, pred = road_frames(200, seed=0)
    per_frame_gt = np.bincount(gt["frame_id"], minlength=200)
    per_frame_pred = np.bincount(pred["frame_id"], minlength=200)
    assert 50 <= per_frame_gt.mean() <= 70 and per_frame_pred.max() <= 500 and per_frame_pred.mean() >= 300
    assert set(np.unique(gt["type"])) == {VEH, PED, CYC}
    # Clustered, not uniform: in each frame the boxes fit a 30 m wide strip (the road with its sidewalks).
    f0 = gt["bbox"][gt["frame_id"] == 0, :2].astype(np.float64)
    centred = f0 - f0.mean(0)
    spread = np.sqrt(np.linalg.eigvalsh(centred.T @ centred / len(f0)))
    assert spread[0] < 10.0 < spread[1]
    # Most predictions are low-score background, as a head's top-K at score threshold 0 gives.
    assert np.median(pred["score"]) < 0.2 and (pred["score"] > 0.5).sum() > 0.5 * len(gt["bbox"])


def test_metric_equals_naive_hungarian_on_road_frames():
    # The clustered road frames make large connected components (a lane of cars with their duplicates): the fast
    # matching must equal a full Hungarian per frame, class and cut-off there too.
    from pc3d.benchmark import suite_metrics

    gt, pred = suite_metrics.road_frames(12, seed=5)
    suite_metrics._check(waymo_detection_metrics(gt, pred), suite_metrics.naive_waymo_metrics(gt, pred))


@pytest.mark.skipif(not os.environ.get("PC3D_WAYMO_OFFICIAL_PYTHON"),
                    reason="the official waymo-open-dataset-tf-2-12-0 needs its own venv: set PC3D_WAYMO_OFFICIAL_PYTHON")
def test_equals_official_package_on_road_frames():
    # The benchmark's official worker on the clustered road frames (large components, duplicates, flips).
    from pc3d.benchmark import suite_metrics

    gt, pred = suite_metrics.road_frames(30, seed=7)
    worker = suite_metrics.official_worker(gt, pred)
    try:
        suite_metrics._check_official(waymo_detection_metrics(gt, pred), worker(), tol=1e-6)
    finally:
        worker.proc.kill()
