"""The custom-dataset path: a small dataset written by the simulator in the documented layout (points in
several formats, JSON and text labels, free class names), indexed by ``create_data.py custom``, read by
``CustomDataset``, trained a few iterations with ``tools/train.py`` and evaluated with ``tools/test.py``."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# Simulator labels -> the custom dataset's class names (Cyclist stays out of the config's class list).
NAMES = {0: "Car", 1: "Pedestrian", 2: "Bicycle"}
FORMATS = [(".pcd", "binary_compressed"), (".bin", None), (".ply", "binary"), (".npy", None), (".laz", None),
           (".npz", None)]


@pytest.fixture(scope="module")
def custom_root(tmp_path_factory):
    """6 simulated frames in the custom layout (4 train, 2 val), each in another point format."""
    pytest.importorskip("pypcd4")
    pytest.importorskip("plyfile")
    pytest.importorskip("laspy")
    from pc3d.datasets.custom import write_labels
    from pc3d.datasets.simulator import simulate_frame
    from pc3d.io import write_points

    root = tmp_path_factory.mktemp("custom")
    ids = []
    for k, (ext, enc) in enumerate(FORMATS):
        frame = simulate_frame(1000 + k, frame_id=f"f{k}")
        pts = frame["points"][:, :4].copy()
        fid = f"scan_{k:03d}"
        if ext == ".laz":
            pts[:, 3] = np.round(pts[:, 3] * 255)  # LAS stores integer intensities: record them 0-255
        write_points(root / "points" / f"{fid}{ext}", pts, ("x", "y", "z", "intensity"), encoding=enc or "binary")
        names = [NAMES[int(c)] for c in frame["gt_labels"]]
        boxes = frame["gt_boxes"]
        if k == 0:  # a box of a class no config learns
            boxes = np.concatenate([boxes, [[5.0, 5.0, 1.0, 1.0, 1.0, 1.0, 0.0]]])
            names = names + ["DontCare"]
        write_labels(root / "labels" / f"{fid}{'.json' if k % 2 == 0 else '.txt'}", boxes, names)
        ids.append(fid)
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text("\n".join(ids[:4]) + "\n")
    (root / "splits" / "val.txt").write_text("\n".join(ids[4:]) + "\n")
    from pc3d.datasets.converters import custom

    import argparse

    args = argparse.Namespace(root=str(root), columns="x,y,z,intensity", classes=None, intensity_scale=None,
                              val_fraction=0.2, gt_database=True)
    custom.run(args)
    return root


def test_create_data_writes_infos_and_database(custom_root):
    infos = json.loads((custom_root / "custom_train_infos.json").read_text())
    assert [f["frame_id"] for f in infos["frames"]] == [f"scan_{k:03d}" for k in range(4)]
    assert infos["meta"]["classes"] == ["Bicycle", "Car", "DontCare", "Pedestrian"]
    assert infos["frames"][0]["names"][-1] == "DontCare"
    val = json.loads((custom_root / "custom_val_infos.json").read_text())
    assert [f["frame_id"] for f in val["frames"]] == ["scan_004", "scan_005"]
    from pc3d.datasets.gt_database import load_gt_database

    db = load_gt_database(custom_root / "gt_database_train.npz")
    assert len(db["boxes"]) > 0 and db["points"].shape[1] == 5


def test_dataset_items_match_the_simulated_frames(custom_root):
    from pc3d.datasets import CustomDataset
    from pc3d.datasets.simulator import simulate_frame

    ds = CustomDataset(custom_root, "train", classes=("Car", "Pedestrian"))
    assert len(ds) == 4 and ds.metainfo["classes"] == ("Car", "Pedestrian")
    for k in (0, 1, 3):  # pcd, bin, npy
        item = ds[k]
        frame = simulate_frame(1000 + k, frame_id="x")
        np.testing.assert_allclose(item["points"][:, :4], frame["points"][:, :4], atol=1e-6)
        assert (item["points"][:, 4] == 0).all()  # no elongation in the files
        keep = frame["gt_labels"] < 2
        np.testing.assert_allclose(item["gt_boxes"], frame["gt_boxes"][keep], atol=1e-5)
        np.testing.assert_array_equal(item["gt_labels"], frame["gt_labels"][keep])
        # The points-in-box counts are recomputed from the file's points: the simulator's own counts.
        np.testing.assert_array_equal(item["gt_num_points"], frame["gt_num_points"][keep])


def test_laz_intensity_is_scaled_back(custom_root):
    from pc3d.datasets import CustomDataset
    from pc3d.datasets.simulator import simulate_frame

    ds = CustomDataset(custom_root, "val", classes=("Car",), intensity_scale=255)
    item = ds[0]  # scan_004: .laz, intensities stored 0-255, millimetre coordinates
    frame = simulate_frame(1004, frame_id="x")
    np.testing.assert_allclose(item["points"][:, :3], frame["points"][:, :3], atol=6e-4)
    np.testing.assert_allclose(item["points"][:, 3], np.round(frame["points"][:, 3] * 255) / 255, atol=1e-6)


def test_bad_label_files_name_the_problem(tmp_path):
    from pc3d.datasets.custom import read_labels

    (tmp_path / "a.txt").write_text("1 2 3 4 5 6 Car\n")
    with pytest.raises(ValueError, match=r"a.txt:1: expected 'x y z dx dy dz heading class'"):
        read_labels(tmp_path / "a.txt")
    (tmp_path / "b.json").write_text('{"boxes": [{"class": "Car", "box": [0, 0, 0, -1, 1, 1, 0]}]}')
    with pytest.raises(ValueError, match=r"b.json: boxes\[0\].box: .*positive sizes"):
        read_labels(tmp_path / "b.json")
    (tmp_path / "c.json").write_text('{"boxes": [')
    with pytest.raises(ValueError, match="c.json: not valid JSON"):
        read_labels(tmp_path / "c.json")


def test_metric_perfect_and_shifted_predictions():
    from pc3d.evaluation.custom import custom_detection_metrics

    gt = np.array([[0, 0, 0, 4, 2, 1.5, 0.0], [10, 0, 0, 0.8, 0.8, 1.8, 0.0]], np.float32)
    frame = dict(gt_boxes=gt, gt_labels=np.array([0, 1]), gt_num_points=np.array([50, 20]), pred_boxes=gt,
                 pred_scores=np.array([0.9, 0.8], np.float32), pred_labels=np.array([0, 1]))
    m = custom_detection_metrics([frame], ("Car", "Person"))
    assert m["Car/AP"] == pytest.approx(1.0) and m["Person/AP"] == pytest.approx(1.0) and m["mAP"] == pytest.approx(1.0)
    shifted = dict(frame, pred_boxes=gt + np.array([1.5, 0, 0, 0, 0, 0, 0], np.float32))
    m = custom_detection_metrics([shifted], ("Car", "Person"), iou_threshold={"Car": 0.5})
    assert m["Car/AP"] == pytest.approx(0.0) and m["Person/AP"] == pytest.approx(0.0)
    m = custom_detection_metrics([shifted], ("Car", "Person"), iou_threshold={"Car": 0.3})
    assert m["Car/AP"] == pytest.approx(1.0)  # 2.5 / 5.5 overlap along x: IoU 0.45
    with pytest.raises(ValueError, match="index the 1 classes"):
        custom_detection_metrics([frame], ("Car",))


CONFIG = """
_base_ = [{base!r}]
class_names = ('Car', 'Pedestrian')
point_cloud_range = [-40.96, -40.96, -2.0, 40.96, 40.96, 4.0]
_pipe = [dict(type='RangeFilter', point_cloud_range=point_cloud_range)]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root={root!r}, split='train', classes=class_names,
                 pipeline=_pipe + [dict(type='RandomFlip', flip_x_prob=0.5, flip_y_prob=0.5)]))
val_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root={root!r}, split='val', classes=class_names,
                 pipeline=_pipe, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='CustomMetric', iou_threshold=dict(Car=0.7, Pedestrian=0.5))
test_evaluator = val_evaluator
model = dict(head=dict(num_classes=2, test_cfg=dict(nms_iou_threshold=[0.2, 0.2])))
max_epochs = 2
param_scheduler = [dict(type='OneCycleLR', eta_max=3e-3, pct_start=0.4, div_factor=10, final_div_factor=100,
                        by_epoch=True, convert_to_iter_based=True, begin=0, end=2)]
train_cfg = dict(max_epochs=2, val_interval=2)
default_hooks = dict(logger=dict(interval=1))
custom_hooks = []
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')
"""


def test_train_and_test_tools_on_the_custom_dataset(custom_root, tmp_path):
    cfg = tmp_path / "custom_cfg.py"
    cfg.write_text(CONFIG.format(base=str(ROOT / "configs" / "centerpoint" / "centerpoint_pillar_synthetic.py"), root=str(custom_root)))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    work = tmp_path / "work"
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "train.py"), str(cfg), "--work-dir", str(work)],
                       capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ckpt = work / "epoch_2.pth"
    assert ckpt.is_file()
    log = r.stdout + r.stderr
    assert "Epoch(train) [2][2/2]" in log  # 4 frames / batch 2 = 2 iterations per epoch, 2 epochs
    assert "Car/AP" in log  # the end-of-training validation ran the custom metric
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "test.py"), str(cfg), str(ckpt), "--work-dir",
                        str(tmp_path / "test")], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    log = r.stdout + r.stderr
    for key in ("Car/AP", "Pedestrian/AP", "mAP"):
        assert key in log
    assert "Bicycle/AP" not in log and "Vehicle" not in log


def test_layout_without_splits_and_duplicate_frames(tmp_path):
    from pc3d.datasets.converters.custom import scan_frames, splits_of

    (tmp_path / "points").mkdir()
    for k in range(10):
        np.zeros((5, 4), np.float32).tofile(tmp_path / "points" / f"{k:02d}.bin")
    frames = scan_frames(tmp_path)
    assert sorted(frames) == [f"{k:02d}" for k in range(10)] and all(lab is None for _, lab in frames.values())
    s = splits_of(tmp_path, set(frames), 0.2)
    assert s["val"] == ["04", "09"] and len(s["train"]) == 8
    np.save(tmp_path / "points" / "03.npy", np.zeros((5, 4), np.float32))
    with pytest.raises(ValueError, match="frame '03' has two point files"):
        scan_frames(tmp_path)
    (tmp_path / "points" / "03.npy").unlink()
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "train.txt").write_text("00\n42\n")
    with pytest.raises(ValueError, match=r"train.txt: frames without a point file in points/: \['42'\]"):
        splits_of(tmp_path, set(frames), 0.2)
