"""Sparse UNet segmentor: voxelization vs a numpy reference, CPU backward (spconv stream fix), learning on a
simulated room, predictions the ScanNet mIoU metric consumes."""
import numpy as np
import pytest
import torch

pytest.importorskip("spconv")

from pc3d.datasets.collate import collate_batch  # noqa: E402
from pc3d.models.segmentors import SparseUNetSegmentor, voxelize_points  # noqa: E402


def _points(n, batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    pts = torch.rand(n, 7, generator=g) * torch.tensor([1, 2.0, 3.0, 1.5, 1, 1, 1])
    pts[:, 0] = torch.randint(0, batch, (n,), generator=g).float()
    pts[:, 1:4] += torch.tensor([5.0, -2.0, 0.3])
    return pts


def test_voxelize_points_matches_numpy_reference():
    pts = _points(3000, 3)
    vs = 0.2
    coords, p2v, feats, shape = voxelize_points(pts, vs, 3)
    p = pts.numpy().astype(np.float64)
    b = p[:, 0].astype(int)
    lo = np.stack([p[b == i, 1:4].min(0) for i in range(3)])
    g = np.floor((p[:, 1:4] - lo[b]) / vs).astype(int)
    expect_coords = np.column_stack([b, g[:, 2], g[:, 1], g[:, 0]])
    np.testing.assert_array_equal(coords.numpy()[p2v.numpy()], expect_coords)  # every point in its voxel
    assert len(np.unique(coords.numpy(), axis=0)) == len(coords)
    assert list(shape) == (g.max(0) + 1)[::-1].tolist()
    for v in (0, len(coords) // 2, len(coords) - 1):
        m = p2v.numpy() == v
        ref = np.concatenate([p[m, 4:7], p[m, 3:4] - lo[b[m], 2:3]], 1).mean(0)
        np.testing.assert_allclose(feats[v].numpy(), ref, atol=1e-5)


def test_loss_backward_reaches_every_parameter_on_cpu():
    torch.manual_seed(0)
    model = SparseUNetSegmentor(num_classes=5, voxel_size=0.2, channels=(8, 16, 16), blocks=(1, 1, 1))
    pts = _points(2000, 2)
    labels = [torch.randint(-1, 5, (int((pts[:, 0] == i).sum()),)) for i in range(2)]
    # collate order: the batch's points are grouped by sample
    order = torch.argsort(pts[:, 0], stable=True)
    batch = {"inputs": {"points": pts[order], "batch_size": 2},
             "data_samples": [{"pts_semantic_mask": lab} for lab in labels]}
    loss = model(**batch, mode="loss")["loss_seg"]
    assert torch.isfinite(loss)
    loss.backward()  # spconv's CPU backward needs the stream fix
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_learns_a_simulated_room_and_feeds_the_metric():
    from pc3d.datasets.scannet.labels import read_label_map
    from pc3d.datasets.scannet.reader import read_scene
    from pc3d.datasets.scannet.sim_scan import simulate_room
    from pc3d.datasets.scannet.sim_writer import write_label_tsv, write_scene
    from pc3d.evaluation.scannet_seg import ScanNetSegMetric

    import tempfile
    from pathlib import Path

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as d:
        room = simulate_room(3, density=120.0)
        write_scene(Path(d) / "scene0000_00", "scene0000_00", room)
        item = read_scene(Path(d) / "scene0000_00", read_label_map(write_label_tsv(d)))
    item["points"][:, 3:] /= 255.0
    item["frame_id"] = "scene0000_00"
    model = SparseUNetSegmentor(num_classes=20, voxel_size=0.1, channels=(16, 32, 32), blocks=(1, 1, 1))
    batch = model.data_preprocessor(collate_batch([item]), True)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(25):
        loss = model(**batch, mode="loss")["loss_seg"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    model.eval()
    with torch.no_grad():
        out = model(**batch, mode="predict")
    assert out[0]["pred_semantic"].shape == (len(item["points"]),)
    gt = out[0]["gt_semantic"].numpy()
    valid = gt >= 0
    acc = (out[0]["pred_semantic"].numpy()[valid] == gt[valid]).mean()
    assert acc > 0.7  # walls and floor alone are most points; the model must at least get those
    metric = ScanNetSegMetric()
    metric.process({}, out)
    res = metric.compute_metrics(metric.results)
    assert 0 < res["mIoU"] <= 1 and res["wall_IoU"] > 0.5


def test_bad_input():
    model = SparseUNetSegmentor(num_classes=3, voxel_size=0.2, channels=(4, 8), blocks=(1, 1))
    with pytest.raises(ValueError, match="points must be"):
        model(inputs={"points": torch.zeros(5, 4), "batch_size": 1}, mode="tensor")
    with pytest.raises(ValueError, match="pts_semantic_mask"):
        model(inputs={"points": _points(50, 1), "batch_size": 1}, data_samples=[{}], mode="loss")
    with pytest.raises(ValueError, match="voxel_size"):
        SparseUNetSegmentor(voxel_size=0)
