"""ModelNet (resampled .txt layout) and ScanObjectNN (h5) loaders read fixtures written in those layouts."""
import numpy as np
import pytest

from pc3d.datasets.modelnet import ModelNet
from pc3d.evaluation.classification import ClassificationAccuracy, classification_accuracy


def write_modelnet(root, n_rows=50):
    """A 3-class ModelNet40-style tree; 'night_stand' checks ids whose class name has an underscore."""
    classes = ["airplane", "night_stand", "vase"] + [f"class{i}" for i in range(37)]
    (root / "modelnet40_shape_names.txt").write_text("\n".join(classes) + "\n")
    train = ["airplane_0001", "night_stand_0003", "vase_0002"]
    (root / "modelnet40_train.txt").write_text("\n".join(train) + "\n")
    (root / "modelnet40_test.txt").write_text("vase_0100\n")
    rng = np.random.default_rng(0)
    clouds = {}
    for sid in train + ["vase_0100"]:
        cls = sid.rsplit("_", 1)[0]
        (root / cls).mkdir(exist_ok=True)
        pts = np.concatenate([rng.normal(size=(n_rows, 3)) * 5 + 10, rng.normal(size=(n_rows, 3))], 1)
        np.savetxt(root / cls / f"{sid}.txt", pts, fmt="%.6f", delimiter=",")
        clouds[sid] = pts.astype(np.float32)
    return clouds


def test_modelnet_reads_the_resampled_layout(tmp_path):
    clouds = write_modelnet(tmp_path)
    ds = ModelNet(str(tmp_path), split="train", num_points=32)
    assert len(ds) == 3 and len(ds.metainfo["classes"]) == 40
    assert [ds[i]["label"] for i in range(3)] == [0, 1, 2]
    p = ds[1]["points"].numpy()
    # First 32 rows of the file, xyz only, centred and scaled to the unit sphere.
    raw = clouds["night_stand_0003"][:32, :3]
    raw = raw - raw.mean(0)
    np.testing.assert_allclose(p, raw / np.linalg.norm(raw, axis=1).max(), atol=1e-5)
    test = ModelNet(str(tmp_path), split="test", num_points=80)  # more than the 50 rows: wraps around
    assert len(test) == 1 and test[0]["points"].shape == (80, 3) and test[0]["label"] == 2


def test_modelnet_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="modelnet40_shape_names.txt"):
        ModelNet(str(tmp_path))
    write_modelnet(tmp_path)
    with pytest.raises(FileNotFoundError, match="modelnet10_shape_names.txt"):
        ModelNet(str(tmp_path), num_categories=10)
    (tmp_path / "modelnet40_train.txt").write_text("teapot_0001\n")
    with pytest.raises(ValueError, match="teapot"):
        ModelNet(str(tmp_path))


def write_scanobjectnn(root, variant_dir="main_split", suffix="_augmentedrot_scale75"):
    h5py = pytest.importorskip("h5py", reason="h5py is not installed (pip install h5py)")
    (root / variant_dir).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    out = {}
    for stem, n in (("training", 4), ("test", 2)):
        data = rng.normal(size=(n, 2048, 3)).astype(np.float32) * 3
        label = np.arange(n, dtype=np.int64)[:, None] + 10  # (S, 1), as some releases store it
        with h5py.File(root / variant_dir / f"{stem}_objectdataset{suffix}.h5", "w") as f:
            f.create_dataset("data", data=data)
            f.create_dataset("label", data=label)
            f.create_dataset("mask", data=np.zeros((n, 2048), np.int32))
        out[stem] = data
    return out


def test_scanobjectnn_reads_h5(tmp_path):
    from pc3d.datasets.scanobjectnn import ScanObjectNN

    data = write_scanobjectnn(tmp_path)
    ds = ScanObjectNN(str(tmp_path), split="train", variant="PB_T50_RS", num_points=1024)
    assert len(ds) == 4 and ds.metainfo["classes"][10] == "bed"
    item = ds[3]
    assert item["label"] == 13 and item["points"].shape == (1024, 3)
    raw = data["training"][3, :1024]
    raw = raw - raw.mean(0)
    np.testing.assert_allclose(item["points"].numpy(), raw / np.linalg.norm(raw, axis=1).max(), atol=1e-5)
    assert len(ScanObjectNN(str(tmp_path), split="test")) == 2


def test_scanobjectnn_variants_and_errors(tmp_path):
    from pc3d.datasets.scanobjectnn import ScanObjectNN, scanobjectnn_file

    write_scanobjectnn(tmp_path, "main_split_nobg", "")
    assert len(ScanObjectNN(str(tmp_path), variant="OBJ_ONLY")) == 4
    assert scanobjectnn_file("r", "test", "OBJ_BG").as_posix() == "r/main_split/test_objectdataset.h5"
    with pytest.raises(FileNotFoundError, match="training_objectdataset_augmentedrot_scale75.h5"):
        ScanObjectNN(str(tmp_path), variant="PB_T50_RS")
    with pytest.raises(ValueError, match="variant"):
        ScanObjectNN(str(tmp_path), variant="PB_T25")


def test_accuracy_metric():
    acc = classification_accuracy(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0]), num_classes=4)
    assert acc["overall_acc"] == pytest.approx(4 / 6)
    assert acc["mean_class_acc"] == pytest.approx((1 / 2 + 1 / 2 + 2 / 2) / 3)  # class 3 absent from gt
    metric = ClassificationAccuracy()
    metric.dataset_meta = dict(classes=("a", "b", "c"))
    metric.process({}, [dict(pred_label=0, gt_label=0), dict(pred_label=2, gt_label=1)])
    assert metric.evaluate(2) == {"cls/overall_acc": 50.0, "cls/mean_class_acc": 50.0}
    with pytest.raises(ValueError, match="equal-length"):
        classification_accuracy(np.zeros(2), np.zeros(3))


def test_point_segmentation_scores():
    from pc3d.evaluation.classification import PointSegmentationMetric, point_segmentation_scores

    pred, gt = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 2])
    s = point_segmentation_scores(pred, gt, num_classes=4)
    assert s["point_acc"] == pytest.approx(4 / 5)
    assert s["miou"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)  # class 3 neither predicted nor present
    metric = PointSegmentationMetric()
    metric.dataset_meta = dict(classes=("a", "b", "c", "d"))
    metric.process({}, [dict(pred_point_labels=pred[:2], gt_point_labels=gt[:2]),
                        dict(pred_point_labels=pred[2:], gt_point_labels=gt[2:])])
    assert metric.evaluate(2)["seg/miou"] == pytest.approx(100 * (1 / 2 + 2 / 3 + 1) / 3)
