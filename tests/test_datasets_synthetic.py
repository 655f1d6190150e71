"""Synthetic dataset files, the dataset class, transforms (box/point consistency), GT-sampling, collate."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pc3d.datasets import CLASSES, SyntheticDataset, collate_batch
from pc3d.datasets.box_utils import bev_overlap_matrix, points_in_boxes_indices, points_in_boxes_mask
from pc3d.datasets.transforms import GlobalRotScaleTrans, ObjectSample, PointShuffle, RandomFlip, RangeFilter
from pc3d.registry import DATASETS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """2 train + 1 val frames and the GT database, written by tools/create_data.py itself."""
    pytest.importorskip("open3d", reason="open3d (the simulator's ray caster) is not installed")
    spec = importlib.util.spec_from_file_location("create_data", ROOT / "tools" / "create_data.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path_factory.mktemp("synthetic")
    tool.main(["synthetic", "--out", str(out), "--train", "2", "--val", "1", "--seed", "3", "--gt-database"])
    return out


def item_of(root, index=0, split="train"):
    return SyntheticDataset(root, split)[index]


def test_dataset_reads_what_create_data_wrote(data_root):
    infos = json.loads((data_root / "train_infos.json").read_text())
    assert [f["frame_id"] for f in infos["frames"]] == ["train_000000", "train_000001"]
    ds = DATASETS.build(dict(type="SyntheticDataset", data_root=str(data_root), split="train"))
    assert len(ds) == 2 and ds.metainfo["classes"] == CLASSES == ("Vehicle", "Pedestrian", "Cyclist")
    for i, info in enumerate(infos["frames"]):
        item = ds[i]
        raw = np.load(data_root / info["path"])
        assert item["frame_id"] == info["frame_id"]
        assert item["points"].dtype == np.float32 and item["points"].shape == (info["num_points"], 5)
        assert np.array_equal(item["points"], raw["points"])
        assert np.array_equal(item["gt_boxes"], raw["gt_boxes"]) and len(item["gt_boxes"]) == info["num_boxes"]
        for key in ("gt_labels", "gt_num_points", "gt_difficulty"):
            assert item[key].dtype == np.int64 and item[key].shape == (info["num_boxes"],)
        assert (item["gt_num_points"] > 0).all()
    val = SyntheticDataset(data_root, "val")
    assert len(val) == 1 and val[0]["frame_id"] == "val_000000"
    seeds = {f["seed"] for f in infos["frames"]} | {json.loads((data_root / "val_infos.json").read_text())["frames"][0]["seed"]}
    assert len(seeds) == 3  # train and val never share a scene


def test_collate_batch_format(data_root):
    ds = SyntheticDataset(data_root, "train")
    items = [ds[0], ds[1]]
    batch = collate_batch(items)
    n0, n1 = len(items[0]["points"]), len(items[1]["points"])
    assert batch["batch_size"] == 2 and batch["frame_id"] == ["train_000000", "train_000001"]
    pts = batch["points"]
    assert pts.dtype == torch.float32 and pts.shape == (n0 + n1, 6)
    assert (pts[:n0, 0] == 0).all() and (pts[n0:, 0] == 1).all()
    assert torch.equal(pts[n0:, 1:], torch.from_numpy(items[1]["points"]))
    for key, dtype in (("gt_boxes", torch.float32), ("gt_labels", torch.int64), ("gt_num_points", torch.int64),
                       ("gt_difficulty", torch.int64)):
        assert isinstance(batch[key], list) and len(batch[key]) == 2
        assert batch[key][1].dtype == dtype and len(batch[key][1]) == len(items[1]["gt_boxes"])
    with pytest.raises(ValueError, match="empty"):
        collate_batch([])


def _inside_pairs(item, shrink=0.02):
    """(point index, box index) pairs with the point safely inside the box (box shrunk by ``shrink``)."""
    boxes = item["gt_boxes"].copy()
    boxes[:, 3:6] -= 2 * shrink
    pairs = [(i, k) for k, idx in enumerate(points_in_boxes_indices(item["points"], boxes)) for i in idx]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


@pytest.mark.parametrize("transform", [
    GlobalRotScaleTrans(rot_range=(2.5, 2.5), scale_range=(1.1, 1.1)),
    GlobalRotScaleTrans(rot_range=(-np.pi, np.pi), scale_range=(0.9, 1.1), translation_std=(0.5, 0.5, 0.2)),
    RandomFlip(1.0, 0.0), RandomFlip(0.0, 1.0), RandomFlip(1.0, 1.0),
])
def test_points_stay_inside_their_boxes_under_augmentation(data_root, transform):
    item = item_of(data_root, 1)
    pairs = _inside_pairs(item)
    assert len(pairs) > 1000
    before = {k: v.copy() for k, v in item.items() if isinstance(v, np.ndarray)}
    out = transform(item, np.random.default_rng(0))
    boxes, pts = out["gt_boxes"], out["points"]
    assert len(pts) == len(before["points"]) and len(boxes) == len(before["gt_boxes"])
    assert (boxes[:, 6] >= -np.pi).all() and (boxes[:, 6] < np.pi).all()
    grown = boxes.copy()
    grown[:, 3:6] += 2e-3  # float32 rounding at box faces
    for k in np.unique(pairs[:, 1]):
        assert points_in_boxes_mask(pts[pairs[pairs[:, 1] == k, 0]], grown[k:k + 1]).all(), f"box {k}"
    np.testing.assert_allclose(np.abs(pts[:, 3:]), np.abs(before["points"][:, 3:]))  # features untouched


def test_rotation_and_flip_are_hand_checked():
    item = {"points": np.array([[1.0, 0.0, 0.5, 0.2, 0.1]], np.float32),
            "gt_boxes": np.array([[1.0, 0.0, 0.5, 4.0, 2.0, 1.5, 3.0]], np.float32)}
    out = GlobalRotScaleTrans(rot_range=(np.pi / 2, np.pi / 2), scale_range=(2.0, 2.0))(
        {k: v.copy() for k, v in item.items()}, np.random.default_rng(0))
    np.testing.assert_allclose(out["points"][0, :3], [0.0, 2.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(out["gt_boxes"][0, :6], [0.0, 2.0, 1.0, 8.0, 4.0, 3.0], atol=1e-6)
    assert out["gt_boxes"][0, 6] == pytest.approx(3.0 + np.pi / 2 - 2 * np.pi, abs=1e-6)  # wrapped
    out = RandomFlip(0.0, 1.0)({k: v.copy() for k, v in item.items()}, np.random.default_rng(0))
    np.testing.assert_allclose(out["points"][0, :2], [-1.0, 0.0])
    assert out["gt_boxes"][0, 6] == pytest.approx(np.pi - 3.0, abs=1e-6)
    flip, g = RandomFlip(1.0, 0.0), np.random.default_rng(0)
    twice = flip(flip({k: v.copy() for k, v in item.items()}, g), g)
    np.testing.assert_allclose(twice["gt_boxes"], item["gt_boxes"], atol=1e-6)


def test_velocity_and_attributes_follow_their_boxes():
    """nuScenes boxes (M, 9) carry velocity: it rotates/scales with the scene and mirrors with flips;
    per-box attributes are filtered together with the boxes."""
    boxes = np.array([[1.0, 0.0, 0.5, 4.0, 2.0, 1.5, 0.0, 3.0, 1.0],
                      [90.0, 0.0, 0.5, 4.0, 2.0, 1.5, 0.0, 0.0, 0.0]], np.float32)
    item = {"points": np.zeros((1, 5), np.float32), "gt_boxes": boxes, "gt_labels": np.array([0, 1]),
            "gt_attributes": np.array([4, 7])}
    out = GlobalRotScaleTrans(rot_range=(np.pi / 2, np.pi / 2), scale_range=(2.0, 2.0))(
        {k: v.copy() for k, v in item.items()}, np.random.default_rng(0))
    np.testing.assert_allclose(out["gt_boxes"][0, 7:9], [-2.0, 6.0], atol=1e-5)  # (3, 1) rotated 90 deg, x2
    out = RandomFlip(1.0, 1.0)({k: v.copy() for k, v in item.items()}, np.random.default_rng(0))
    np.testing.assert_allclose(out["gt_boxes"][0, 7:9], [-3.0, -1.0])
    out = RangeFilter([-50, -50, -5, 50, 50, 5])({k: v.copy() for k, v in item.items()})
    assert out["gt_attributes"].tolist() == [4] and out["gt_labels"].tolist() == [0]


def test_range_filter_and_shuffle(data_root):
    item = item_of(data_root, 0)
    rng_ = [-30.0, -20.0, -1.0, 30.0, 20.0, 3.0]
    out = RangeFilter(rng_)({k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in item.items()})
    p, b = out["points"], out["gt_boxes"]
    assert 0 < len(p) < len(item["points"])
    assert (p[:, :3] >= rng_[:3]).all() and (p[:, :3] < rng_[3:]).all()
    assert (np.abs(b[:, 0]) < 30).all() and (np.abs(b[:, 1]) < 20).all()
    inside = (np.abs(item["gt_boxes"][:, 0]) < 30) & (np.abs(item["gt_boxes"][:, 1]) < 20)
    assert len(b) == inside.sum() and np.array_equal(out["gt_labels"], item["gt_labels"][inside])
    assert len(out["gt_difficulty"]) == len(out["gt_num_points"]) == len(b)
    with pytest.raises(ValueError, match="point_cloud_range"):
        RangeFilter([0, 0, 0, -1, 1, 1])
    shuffled = PointShuffle()({"points": out["points"].copy()}, np.random.default_rng(1))["points"]
    assert not np.array_equal(shuffled, out["points"])
    assert np.array_equal(np.unique(shuffled, axis=0), np.unique(out["points"], axis=0))


def test_gt_sampling_adds_objects_without_overlap(data_root):
    sampler = ObjectSample(data_root / "gt_database_train.npz", {"Vehicle": 40, "Pedestrian": 20, "Cyclist": 12}, 5)
    item = item_of(data_root, 0, "val")  # paste training objects into a validation scene
    m0 = len(item["gt_boxes"])
    out = sampler({k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in item.items()}, np.random.default_rng(0))
    boxes = out["gt_boxes"]
    assert len(boxes) > m0
    for key in ("gt_labels", "gt_num_points", "gt_difficulty"):
        assert len(out[key]) == len(boxes)
    ov = bev_overlap_matrix(boxes, boxes)
    np.fill_diagonal(ov, False)
    assert not ov[m0:].any()  # pasted boxes overlap neither the scene's boxes nor each other
    counts = [len(i) for i in points_in_boxes_indices(out["points"], boxes[m0:])]
    assert (np.array(counts) >= 5).all() and np.array_equal(counts, out["gt_num_points"][m0:])
    assert out["points"].dtype == np.float32 and out["points"].shape[1] == 5


def test_augmentation_is_deterministic_per_seed(data_root):
    pipe = [dict(type="GlobalRotScaleTrans"), dict(type="RandomFlip"), dict(type="PointShuffle"),
            dict(type="ObjectSample", db_path=str(data_root / "gt_database_train.npz"))]
    a = SyntheticDataset(data_root, "train", pipeline=pipe, seed=5)
    b = SyntheticDataset(data_root, "train", pipeline=pipe, seed=5)
    assert np.array_equal(a[0]["points"], b[0]["points"]) and np.array_equal(a[0]["gt_boxes"], b[0]["gt_boxes"])
    assert not np.array_equal(a[0]["points"], SyntheticDataset(data_root, "train", pipeline=pipe, seed=6)[0]["points"])
    g = SyntheticDataset(data_root, "train", pipeline=pipe)  # seed=None: numpy's global state decides
    np.random.seed(123)
    first = g[1]["gt_boxes"]
    np.random.seed(123)
    assert np.array_equal(first, g[1]["gt_boxes"])


def test_bad_files_raise_errors_naming_the_file(data_root, tmp_path):
    with pytest.raises(FileNotFoundError, match="train_infos.json"):
        SyntheticDataset(tmp_path, "train")
    ds = SyntheticDataset(data_root, "train")
    frame = ds.frame_path(0)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("train_infos.json", "gt_database_train.npz"):
        (broken / name).write_bytes((data_root / name).read_bytes())
    (broken / "train").mkdir()
    data = frame.read_bytes()
    (broken / "train" / frame.name).write_bytes(data[: len(data) // 2])  # truncated; frame 1 missing
    bad = SyntheticDataset(broken, "train")
    with pytest.raises(ValueError, match=frame.name):
        bad[0]
    with pytest.raises(FileNotFoundError, match="train_000001.npz"):
        bad[1]
    with pytest.raises(IndexError):
        bad[2]
    db = broken / "gt_database_train.npz"
    db.write_bytes(db.read_bytes()[:100])
    with pytest.raises(ValueError, match="gt_database_train.npz"):
        ObjectSample(db)
    with pytest.raises(ValueError, match="unknown classes"):
        ObjectSample(data_root / "gt_database_train.npz", {"Truck": 3})


@pytest.mark.slow
def test_workers_write_the_same_frames(data_root, tmp_path):
    """Process-parallel generation gives bit-identical files (seeds depend on the frame, not the worker)."""
    spec = importlib.util.spec_from_file_location("create_data", ROOT / "tools" / "create_data.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main(["synthetic", "--out", str(tmp_path), "--train", "2", "--val", "0", "--seed", "3", "--workers", "2"])
    for name in ("train_000000.npz", "train_000001.npz"):
        a, b = np.load(data_root / "train" / name), np.load(tmp_path / "train" / name)
        for key in a.files:
            assert np.array_equal(a[key], b[key]), (name, key)


def test_range_filters_take_the_datasets_range(tmp_path):
    # A config that changes the detection range sets it on the dataset; pipeline range filters left unset take it.
    from pc3d.datasets.transforms import Compose, RangeFilter

    pipeline = [dict(type='RangeFilter'), dict(type='PointShuffle'), dict(type='RangeFilter', point_cloud_range=[
        -1, -1, -1, 1, 1, 1])]
    composed = Compose(pipeline, point_cloud_range=[-5, -5, -2, 5, 5, 4])
    first, _, last = composed.transforms
    assert isinstance(first, RangeFilter) and first.range.tolist() == [-5, -5, -2, 5, 5, 4]
    assert last.range.tolist() == [-1, -1, -1, 1, 1, 1]  # an explicit range wins
    with pytest.raises(ValueError, match="point_cloud_range"):
        Compose([dict(type='RangeFilter')])
