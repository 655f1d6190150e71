"""tools/infer.py and pc3d.apis.inference_file on the real Ouster scans (as .bin, and written out as .pcd
and .ply), on a ROS bag written here, and on bad input; the 3D HTML's content is checked without a
browser (points and every detection's wireframe present, plotly.js inline)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REAL_LIDAR_DIR, ROOT

CONFIG = ROOT / "configs" / "centerpoint" / "centerpoint_pillar_synthetic.py"
FIELDS = ("x", "y", "z", "intensity", "ring")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """The demo detector with random weights whose heatmap bias is raised so that it outputs boxes above
    0.3 (the pipeline is under test here, not the detector's quality)."""
    import torch

    from pc3d.apis import init_model

    torch.manual_seed(0)
    model = init_model(str(CONFIG))
    with torch.no_grad():
        model.head.heatmap[-1].bias.fill_(1.0)
    path = tmp_path_factory.mktemp("ckpt") / "random.pth"
    torch.save({"state_dict": model.state_dict()}, path)
    return path


def _run(*args, timeout=900):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(ROOT / "tools" / "infer.py"), *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout)


def _check_html(html_path, det):
    from pc3d.visualization.scene3d import box_edges_3d, read_scene_html

    text = html_path.read_text()
    assert "<script src=" not in text  # plotly.js is inline: the file works offline
    assert "plotly" in text.lower() and len(text) > 3_000_000
    fig = read_scene_html(html_path)
    names = [t["name"] for t in fig["data"]]
    points = fig["data"][0]
    assert points["name"].startswith("points (") and len(points["x"]) > 1000 and points["mode"] == "markers"
    by_class = {}
    for d in det["detections"]:
        by_class.setdefault(d["class"], []).append(d["box"])
    assert len(names) == 1 + len(by_class)
    for cls, boxes in by_class.items():
        (trace,) = [t for t in fig["data"] if t["name"] == f"{cls} ({len(boxes)})"]
        xyz = np.array([[np.nan if v is None else v for v in trace[k]] for k in "xyz"], float).T
        np.testing.assert_allclose(xyz, box_edges_3d(np.array(boxes)), atol=2e-3)


@pytest.fixture(scope="module")
def real_inputs(real_scans, tmp_path_factory):
    """One real scan as .bin (the original), .pcd (binary_compressed) and .ply."""
    pytest.importorskip("pypcd4")
    pytest.importorskip("plyfile")
    from pc3d.io import write_points

    name = sorted(real_scans)[0]
    folder = tmp_path_factory.mktemp("real")
    pts = real_scans[name].numpy()
    (folder / f"{name}.bin").write_bytes((REAL_LIDAR_DIR / f"{name}.bin").read_bytes())
    write_points(folder / f"{name}_pcd.pcd", pts, FIELDS, encoding="binary_compressed")
    write_points(folder / f"{name}_ply.ply", pts, FIELDS)
    return folder, name


def test_infer_tool_on_real_scans(real_inputs, checkpoint, tmp_path):
    pytest.importorskip("plotly")
    folder, name = real_inputs
    out = tmp_path / "out"
    r = _run(CONFIG, checkpoint, folder, "--out", out, "--columns", "x,y,z,intensity,ring", "--score-thr", "0.3",
             "--threads", "1")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    # The ground warning is printed once for the three copies of the same scan, with the fix to pass.
    assert r.stderr.count("the ground is at z = -1.9") == 1 and "--align-ground" in r.stderr
    assert "frame" in r.stdout and "Pedestrian" in r.stdout and "3 of 3 frames" in r.stdout
    dets = {}
    for stem in (name, f"{name}_pcd", f"{name}_ply"):
        det = json.loads((out / f"{stem}.json").read_text())
        assert det["class_names"] == ["Vehicle", "Pedestrian", "Cyclist"] and "heading" in det["box_convention"]
        assert det["num_detections"] == len(det["detections"]) > 0
        assert all(d["score"] >= 0.3 and len(d["box"]) == 7 for d in det["detections"])
        assert det["input"]["ground"]["height"] == pytest.approx(-1.9, abs=0.15)
        assert det["input"]["filled_columns"] == ["elongation"]
        assert (out / f"{stem}_bev.png").stat().st_size > 10_000
        dets[stem] = det
        _check_html(out / f"{stem}_3d.html", det)
    # The three files hold the same points: the same detections.
    assert dets[name]["detections"] == dets[f"{name}_pcd"]["detections"] == dets[f"{name}_ply"]["detections"]

    # --align-ground: no ground warning; the transform is in the JSON; the same boxes as inference_file.
    r = _run(CONFIG, checkpoint, folder / f"{name}.bin", "--out", tmp_path / "aligned", "--columns",
             "x,y,z,intensity,ring", "--align-ground", "--no-html", "--threads", "1")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "the ground is at" not in r.stderr
    det = json.loads((tmp_path / "aligned" / f"{name}.json").read_text())
    assert abs(det["input"]["ground_after"]["height"]) < 0.1
    assert det["input"]["transform"][2][3] == pytest.approx(1.9, abs=0.15)
    assert not (tmp_path / "aligned" / f"{name}_3d.html").exists()

    import torch

    from pc3d.apis import inference_file, init_model

    torch.set_num_threads(1)
    model = init_model(str(CONFIG), str(checkpoint))
    (res,) = inference_file(model, folder / f"{name}.bin", columns="x,y,z,intensity,ring", align_ground=True)
    assert res.to_json(0.3)["detections"] == det["detections"]


def test_infer_tool_on_a_bag(real_scans, checkpoint, tmp_path):
    pytest.importorskip("rosbags")
    from pc3d.io import write_bag

    pts = sorted(real_scans.items())[0][1].numpy()
    bag = write_bag(tmp_path / "drive.bag", [pts[::2], pts[1::2]], FIELDS, topic="/os1/points")
    r = _run(CONFIG, checkpoint, bag, "--out", tmp_path / "out", "--align-ground", "--no-html", "--no-png",
             "--threads", "1")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "2 of 2 frames" in r.stdout
    for k in range(2):
        det = json.loads((tmp_path / "out" / f"drive_{k:05d}.json").read_text())
        assert det["source"] == f"{bag}#/os1/points[{k}]" and det["timestamp_ns"] == (k + 1) * 100_000_000
        assert det["num_detections"] > 0


def test_infer_tool_reports_bad_files_and_goes_on(checkpoint, tmp_path):
    rng = np.random.default_rng(0)
    good = np.column_stack([rng.uniform(-30, 30, (3001, 2)), rng.normal(0, 0.05, 3001), rng.uniform(0, 1, 3001)])
    good.astype(np.float32).tofile(tmp_path / "a_good.bin")
    (tmp_path / "b_truncated.bin").write_bytes(good.astype(np.float32).tobytes()[:-6])
    np.full((10, 4), np.nan, np.float32).tofile(tmp_path / "c_nan.bin")
    (tmp_path / "d_empty.bin").write_bytes(b"")
    r = _run(CONFIG, checkpoint, tmp_path, "--out", tmp_path / "out", "--columns", "x,y,z,intensity", "--no-html",
             "--no-png", "--threads", "1")
    assert r.returncode == 1
    assert "1 of 4 frames" in r.stdout
    assert "b_truncated.bin: 48010 bytes is not a whole number of float32 values: the file is truncated" in r.stdout
    assert "c_nan.bin: no finite point" in r.stdout and "d_empty.bin: the point cloud is empty" in r.stdout
    assert (tmp_path / "out" / "a_good.json").is_file() and not (tmp_path / "out" / "c_nan.json").exists()
    # A .bin with a column count that does not divide it, without --columns: the model's 5 columns do not fit.
    r = _run(CONFIG, checkpoint, tmp_path / "a_good.bin", "--out", tmp_path / "out2", "--no-html", "--no-png")
    assert r.returncode == 1
    assert "a_good.bin: 48016 bytes is not a whole number of 5-float32 rows (x,y,z,intensity,elongation); column " \
           "counts that fit: [4]" in r.stdout
    r = _run(CONFIG, checkpoint, tmp_path / "missing.pcd")
    assert r.returncode != 0 and "missing.pcd: no such file or folder" in r.stderr


def test_scene_html_draws_axis_aligned_boxes_too(tmp_path):
    pytest.importorskip("plotly")
    from pc3d.visualization.scene3d import box_corners_3d, read_scene_html, write_scene_html

    pts = np.random.default_rng(0).uniform(-5, 5, (500, 4)).astype(np.float32)
    aligned = np.array([[1.0, 2.0, 0.5, 2.0, 1.0, 1.0]])
    np.testing.assert_allclose(box_corners_3d(aligned), box_corners_3d(np.c_[aligned, [0.0]]))
    c = box_corners_3d(aligned)[0]
    np.testing.assert_allclose(c.min(0), [0, 1.5, 0], atol=1e-12)
    np.testing.assert_allclose(c.max(0), [2, 2.5, 1], atol=1e-12)
    path = write_scene_html(tmp_path / "s.html", pts, aligned, [0.8], [1], ("chair", "table"), color_by="intensity")
    fig = read_scene_html(path)
    assert [t["name"] for t in fig["data"]] == ["points (500)", "table (1)"]
    np.testing.assert_allclose(fig["data"][0]["marker"]["color"], pts[:, 3], atol=1e-6)
    with pytest.raises(ValueError, match=r"boxes must be \(M, 7\)"):
        box_corners_3d(np.zeros((2, 5)))
