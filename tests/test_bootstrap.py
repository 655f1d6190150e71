"""Detections files and the frame bootstrap of the Waymo AP (pc3d.evaluation.detections_io / bootstrap,
tools/compare_detections.py)."""
import json

import numpy as np
import pytest

from pc3d.evaluation.bootstrap import (compare_models, compare_runs, frame_measurements, resample_weights,
                                       weighted_ap)
from pc3d.evaluation.detections_io import load_detections, save_detections
from pc3d.evaluation.waymo import (WaymoMetric, flatten_waymo_metrics, waymo_detection_metrics,
                                   waymo_inputs_from_frames)

CLASSES = ("Vehicle", "Pedestrian", "Cyclist")


def _boxes(rng, n):
    return np.c_[rng.uniform(-20, 20, (n, 2)), rng.uniform(-1, 1, (n, 1)), rng.uniform(1, 4, (n, 3)),
                 rng.uniform(-3, 3, (n, 1))].astype(np.float32)


def random_frames(seed, num_frames=24, noise=0.15):
    """Frames whose predictions are jittered ground truths (some missed) plus false positives; some frames
    are empty on one side or both."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(num_frames):
        m = int(rng.integers(0, 8)) if i % 7 else 0
        gt = _boxes(rng, m)
        labels = rng.integers(0, 3, m)
        kept = rng.random(m) < 0.8
        k = int(rng.integers(0, 4))
        pred = np.r_[gt[kept] + rng.normal(0, noise, (kept.sum(), 7)).astype(np.float32), _boxes(rng, k)]
        frames.append({"frame_id": f"frame_{i:03d}", "pred_boxes": pred,
                       "pred_scores": rng.random(len(pred)).astype(np.float32),
                       "pred_labels": np.r_[labels[kept], rng.integers(0, 3, k)].astype(np.int64),
                       "gt_boxes": gt, "gt_labels": labels.astype(np.int64),
                       "gt_num_points": rng.integers(0, 40, m).astype(np.int64),
                       "gt_difficulty": rng.integers(1, 3, m).astype(np.int64)})
    return frames


def full_metrics(frames):
    return flatten_waymo_metrics(waymo_detection_metrics(*waymo_inputs_from_frames(frames)))


def test_detections_file_round_trip(tmp_path):
    frames = random_frames(0)
    path = save_detections(tmp_path / "run.npz", frames)
    back = load_detections(path)
    assert len(back) == len(frames)
    for a, b in zip(frames, back):
        assert a["frame_id"] == b["frame_id"]
        for k in a:
            if k != "frame_id":
                np.testing.assert_array_equal(np.asarray(a[k]), b[k], err_msg=k)
    assert not list(tmp_path.glob("*.tmp"))  # the temporary file was renamed over the target
    assert full_metrics(back) == full_metrics(frames)


def test_detections_file_errors_name_what_is_wrong(tmp_path):
    frames = random_frames(1, num_frames=6)
    bad = dict(frames[0])
    del bad["gt_difficulty"]
    with pytest.raises(ValueError, match="gt_difficulty"):
        save_detections(tmp_path / "x.npz", [bad])
    f = next(f for f in frames if len(f["pred_scores"]))
    short = dict(f, pred_scores=f["pred_scores"][:-1])
    with pytest.raises(ValueError, match="pred fields have different lengths"):
        save_detections(tmp_path / "x.npz", [short])
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_detections(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz"):
        load_detections(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="missing fields"):
        load_detections(tmp_path / "other.npz")
    path = save_detections(tmp_path / "good.npz", frames)
    data = dict(np.load(path))
    np.savez(tmp_path / "other_format.npz", **dict(data, format=np.array("something-else-v9")))
    with pytest.raises(ValueError, match="format 'something-else-v9'"):
        load_detections(tmp_path / "other_format.npz")
    data["num_gt"] = data["num_gt"] + 1  # counts that no longer split the gt columns
    np.savez(tmp_path / "bad_counts.npz", **data)
    with pytest.raises(ValueError, match="'gt_boxes' has shape"):
        load_detections(tmp_path / "bad_counts.npz")


@pytest.mark.parametrize("level", [1, 2])
def test_unit_weights_equal_the_plain_metric(level):
    frames = random_frames(2)
    got = weighted_ap(frame_measurements(frames), np.ones((1, len(frames))), level=level)
    full = full_metrics(frames)
    for c in CLASSES:
        assert got[f"{c}/AP"][0] == pytest.approx(full[f"{c}/L{level}_AP"], abs=1e-6)
        assert got[f"{c}/APH"][0] == pytest.approx(full[f"{c}/L{level}_APH"], abs=1e-6)


def test_weights_equal_repeating_frames():
    frames = random_frames(3, num_frames=12)
    weights = resample_weights(len(frames), 5, seed=4)
    got = weighted_ap(frame_measurements(frames), weights)
    for b, w in enumerate(weights):
        repeated = [f for f, n in zip(frames, w) for _ in range(n)]
        full = full_metrics(repeated)
        for c in CLASSES:
            assert got[f"{c}/AP"][b] == pytest.approx(full[f"{c}/L1_AP"], abs=1e-6)
            assert got[f"{c}/APH"][b] == pytest.approx(full[f"{c}/L1_APH"], abs=1e-6)


def test_hand_computed_resamples():
    """Frame 0: one vehicle found exactly; frame 1: one vehicle missed."""
    box = np.array([[0, 0, 0, 4, 2, 1.5, 0.3]], np.float32)
    empty = np.zeros((0, 7), np.float32)
    common = {"gt_boxes": box, "gt_labels": np.array([0]), "gt_num_points": np.array([50]),
              "gt_difficulty": np.array([1])}
    frames = [{"frame_id": "hit", "pred_boxes": box, "pred_scores": np.array([0.9], np.float32),
               "pred_labels": np.array([0]), **common},
              {"frame_id": "miss", "pred_boxes": empty, "pred_scores": np.zeros(0, np.float32),
               "pred_labels": np.zeros(0, np.int64), **common}]
    got = weighted_ap(frame_measurements(frames), np.array([[2, 0], [0, 2], [1, 1], [3, 1]]))
    # (2, 0): all found, AP 1; (0, 2): nothing predicted, AP 0; (1, 1): recall 1/2 at precision 1;
    # (3, 1): recall 3/4 at precision 1.
    np.testing.assert_allclose(got["Vehicle/AP"], [1.0, 0.0, 0.5, 0.75], atol=1e-6)
    np.testing.assert_allclose(got["Vehicle/APH"], got["Vehicle/AP"], atol=1e-6)


def test_compare_runs_pairs_the_frames():
    good = random_frames(5, num_frames=40, noise=0.02)
    # The same scenes with worse boxes: every prediction shifted 0.6 m, which drops most vehicles below IoU 0.7.
    worse = [dict(f, pred_boxes=f["pred_boxes"] + np.array([0.6, 0, 0, 0, 0, 0, 0], np.float32)) for f in good]
    out = compare_runs({"good": good, "same": good, "worse": worse}, num_samples=200, seed=0)
    same = out["differences"]["same"]["Vehicle/AP"]
    assert same["value"] == 0.0 and same["interval"] == [0.0, 0.0] and same["p_at_least"] == 1.0
    d = out["differences"]["worse"]["Vehicle/AP"]
    assert d["value"] < 0 and d["interval"][1] < 0 and d["p_at_least"] == 0.0
    run = out["runs"]["good"]["Vehicle/AP"]
    assert run["interval"][0] <= run["value"] <= run["interval"][1]
    assert run["value"] == pytest.approx(full_metrics(good)["Vehicle/L1_AP"], abs=1e-6)
    assert run["std"] > 0  # 40 frames do not pin the AP down


def test_compare_runs_refuses_different_frames():
    a = random_frames(6, num_frames=10)
    with pytest.raises(ValueError, match="10 and 9 frames"):
        compare_runs({"a": a, "b": a[:9]}, num_samples=10)
    with pytest.raises(ValueError, match="frame order"):
        compare_runs({"a": a, "b": a[::-1]}, num_samples=10)
    i = next(i for i, f in enumerate(a) if len(f["gt_labels"]))
    other_gt = list(a)
    other_gt[i] = dict(a[i], gt_labels=(a[i]["gt_labels"] + 1) % 3)
    with pytest.raises(ValueError, match="different ground truth"):
        compare_runs({"a": a, "b": other_gt}, num_samples=10)


def _shifted(frames, dx):
    return [dict(f, pred_boxes=f["pred_boxes"] + np.array([dx, 0, 0, 0, 0, 0, 0], np.float32)) for f in frames]


def test_compare_models_averages_seeds_and_redraws_them():
    good = random_frames(10, num_frames=40, noise=0.02)
    worse = _shifted(good, 0.6)
    out = compare_models({"base": [good, good], "twin": [good, good], "mixed": [good, worse]},
                         num_samples=300, seed=0)
    ap_good, ap_worse = full_metrics(good)["Vehicle/L1_AP"], full_metrics(worse)["Vehicle/L1_AP"]
    mixed = out["runs"]["mixed"]["Vehicle/AP"]
    assert mixed["per_run"] == pytest.approx([ap_good, ap_worse], abs=1e-6)
    assert mixed["value"] == pytest.approx((ap_good + ap_worse) / 2, abs=1e-6)
    assert out["num_runs"] == {"base": 2, "twin": 2, "mixed": 2}
    twin = out["differences"]["twin"]["Vehicle/AP"]
    assert twin["interval"] == [0.0, 0.0] and twin["interval_seeds"] == [0.0, 0.0]
    d = out["differences"]["mixed"]["Vehicle/AP"]
    assert d["value"] == pytest.approx((ap_worse - ap_good) / 2, abs=1e-6)
    # Redrawing the runs: a quarter of the resamples take the worse run twice and a quarter the good run twice,
    # so the seed-aware interval reaches further down than the frames-only one, and up to no difference.
    assert d["interval_seeds"][0] < d["interval"][0] and d["interval_seeds"][1] >= -1e-9 > d["interval"][1]
    assert 0.15 < d["p_at_least_seeds"] < 0.35 and d["p_at_least"] == 0.0


def test_compare_models_with_one_run_each_is_compare_runs():
    good = random_frames(11, num_frames=30, noise=0.02)
    worse = _shifted(good, 0.4)
    runs = compare_runs({"a": good, "b": worse}, num_samples=100, seed=3)
    # Two copies of one run average to that run, and the frame resamples do not depend on the number of runs.
    models = compare_models({"a": [good], "b": [worse, worse]}, num_samples=100, seed=3)
    for k in ("Vehicle/AP", "Pedestrian/APH"):
        assert models["differences"]["b"][k]["interval"] == pytest.approx(runs["differences"]["b"][k]["interval"])
        assert models["runs"]["b"][k]["interval"] == pytest.approx(runs["runs"]["b"][k]["interval"])
        assert runs["runs"]["a"][k]["interval_seeds"] == runs["runs"]["a"][k]["interval"]
        assert runs["differences"]["b"][k]["interval_seeds"] == runs["differences"]["b"][k]["interval"]


def test_compare_models_refuses_bad_input():
    a = random_frames(12, num_frames=8)
    with pytest.raises(ValueError, match="model 'a' must be a non-empty list of runs"):
        compare_models({"a": a}, num_samples=5)
    with pytest.raises(ValueError, match="model 'b' must be a non-empty list of runs"):
        compare_models({"a": [a], "b": []}, num_samples=5)
    with pytest.raises(ValueError, match=r"'a' and 'b\[1\]' differ in frame order"):
        compare_models({"a": [a], "b": [a, a[::-1]]}, num_samples=5)


def test_waymo_metric_dump_file(tmp_path):
    frames = random_frames(7, num_frames=6)
    path = tmp_path / "eval" / "dets.npz"
    metric = WaymoMetric(dump_file=str(path))
    metric.process(None, frames)
    flat = metric.compute_metrics(metric.results)
    back = load_detections(path)
    assert [f["frame_id"] for f in back] == [f["frame_id"] for f in frames]
    assert full_metrics(back)["Vehicle/L1_AP"] == flat["Vehicle/L1_AP"]
    with pytest.raises(ValueError, match="dump_file must end with .npz"):
        WaymoMetric(dump_file=str(tmp_path / "dets.pkl"))


def test_compare_detections_tool(tmp_path, capsys):
    from tools.compare_detections import main

    good = random_frames(8, num_frames=20, noise=0.02)
    worse = [dict(f, pred_scores=np.random.default_rng(0).random(len(f["pred_scores"])).astype(np.float32),
                  pred_boxes=f["pred_boxes"] + np.array([0.5, 0, 0, 0, 0, 0, 0], np.float32)) for f in good]
    a, b = save_detections(tmp_path / "a.npz", good), save_detections(tmp_path / "b.npz", worse)
    summary = main([f"base={a}", str(b), "--samples", "50", "--json", str(tmp_path / "s.json")])
    text = capsys.readouterr().out
    assert "b - base:" in text and "Vehicle/AP" in text and "P(>= base)" in text
    saved = json.loads((tmp_path / "s.json").read_text())
    assert saved["differences"]["b"]["Vehicle/AP"]["value"] == pytest.approx(
        full_metrics(worse)["Vehicle/L1_AP"] - full_metrics(good)["Vehicle/L1_AP"], abs=1e-6)
    assert summary["num_frames"] == 20
    with pytest.raises(SystemExit):
        main([str(a), str(a)])  # the same name twice


def test_sequence_resampling_keeps_sequences_whole():
    groups = np.repeat(["seg_a", "seg_b", "seg_c"], [4, 2, 3])
    w = resample_weights(9, 200, seed=1, groups=groups)
    for start, stop in ((0, 4), (4, 6), (6, 9)):
        assert (w[:, start:stop] == w[:, [start]]).all()  # a sequence is drawn as a whole
    assert (w[:, [0, 4, 6]].sum(1) == 3).all()  # three sequences drawn per resample
    # One group per frame is the frame bootstrap.
    np.testing.assert_array_equal(resample_weights(9, 50, seed=2, groups=np.arange(9)), resample_weights(9, 50, seed=2))
    with pytest.raises(ValueError, match="one key per frame"):
        resample_weights(9, 5, groups=groups[:5])


def test_compare_detections_tool_by_sequence(tmp_path):
    from tools.compare_detections import main

    frames = random_frames(9, num_frames=12)
    # Two sequences of six frames: '<sequence>_<index>' ids, as Waymo's.
    frames = [dict(f, frame_id=f"seg{i // 6}_{i:03d}") for i, f in enumerate(frames)]
    a = save_detections(tmp_path / "a.npz", frames)
    one_seq = save_detections(tmp_path / "one.npz", [dict(f, frame_id=f"seg_{i:03d}") for i, f in enumerate(frames)])
    s = main([str(a), "--samples", "200", "--by-sequence"])["runs"]["a"]["Vehicle/AP"]
    half = [weighted_ap(frame_measurements(frames), np.array([w]))["Vehicle/AP"][0]
            for w in ([2] * 6 + [0] * 6, [0] * 6 + [2] * 6)]
    # Resampling two sequences can only give: both sequences, or one of them twice.
    assert s["interval"][0] >= min(half + [s["value"]]) - 1e-9 and s["interval"][1] <= max(half + [s["value"]]) + 1e-9
    # A single sequence: every resample is the whole set.
    s1 = main([str(one_seq), "--samples", "50", "--by-sequence"])["runs"]["one"]["Vehicle/AP"]
    assert s1["interval"] == [s1["value"], s1["value"]] and s1["std"] == 0.0


def test_compare_detections_tool_seeds(tmp_path, capsys):
    from tools.compare_detections import main

    good = random_frames(13, num_frames=20, noise=0.02)
    a, b = save_detections(tmp_path / "a.npz", good), save_detections(tmp_path / "b.npz", _shifted(good, 0.5))
    summary = main([f"base={a},{a}", f"mixed={a},{b}", "--samples", "50"])
    text = capsys.readouterr().out
    assert "mixed (2 runs)" in text and "  run 1" in text and "seeds [" in text
    assert summary["runs"]["mixed"]["Vehicle/AP"]["per_run"] == pytest.approx(
        [full_metrics(good)["Vehicle/L1_AP"], full_metrics(_shifted(good, 0.5))["Vehicle/L1_AP"]], abs=1e-6)
    with pytest.raises(SystemExit, match="name a model of several runs"):
        main([f"{a},{b}"])
    with pytest.raises(SystemExit, match="expected NAME=PATH.npz"):
        main([f"x={a},"])
