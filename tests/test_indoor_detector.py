"""TR3D indoor detector: axis-aligned IoU / NMS against plain references, the assignment worked by hand, DIoU
values, voxel-centre geometry of the output levels, gradients, learning one simulated room, configs, and
tools/train.py + tools/test.py end to end on a tiny simulated set."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("spconv")

from pc3d.models.detectors.tr3d import TR3D, voxelize_scenes  # noqa: E402
from pc3d.models.heads.tr3d import (aligned_diou_loss, assign_centre_topk, sigmoid_focal_loss_sum,  # noqa: E402
                                    sparse_union_add)
from pc3d.ops.aligned_boxes import aligned_box_iou_3d, multiclass_nms_aligned_3d, nms_aligned_3d  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- plain references
def _iou_ref(a, b):
    """One pair of (6,) boxes, float64, straight from the definition."""
    inter = 1.0
    for k in range(3):
        lo = max(a[k] - a[k + 3] / 2, b[k] - b[k + 3] / 2)
        hi = min(a[k] + a[k + 3] / 2, b[k] + b[k + 3] / 2)
        inter *= max(hi - lo, 0.0)
    union = a[3] * a[4] * a[5] + b[3] * b[4] * b[5] - inter
    return inter / union if union > 0 else 0.0


def _nms_ref(boxes, scores, thr):
    order = sorted(range(len(boxes)), key=lambda i: (-scores[i], i))
    keep = []
    for i in order:
        if all(_iou_ref(boxes[i], boxes[j]) <= thr for j in keep):
            keep.append(i)
    return keep


def _random_boxes(n, seed, spread=3.0):
    g = np.random.default_rng(seed)
    b = np.concatenate([g.uniform(0, spread, (n, 3)), g.uniform(0.2, 1.5, (n, 3))], 1)
    return b


def test_iou_matches_reference_including_touching_and_degenerate_boxes():
    b = _random_boxes(40, 0)
    b[1] = b[0]  # identical
    b[2] = b[0] + [b[0, 3], 0, 0, 0, 0, 0]  # touching along x: IoU 0
    b[3, 3:] = [0.0, 1.0, 1.0]  # zero volume
    b[4] = b[0] * [1, 1, 1, 0.5, 0.5, 0.5]  # nested: IoU 1/8
    iou = aligned_box_iou_3d(torch.tensor(b), torch.tensor(b)).numpy()
    ref = np.array([[_iou_ref(x, y) for y in b] for x in b])
    np.testing.assert_allclose(iou, ref, atol=1e-12)
    assert iou[0, 1] == pytest.approx(1) and iou[0, 2] == pytest.approx(0, abs=1e-12) and iou[3, 3] == 0
    assert iou[0, 4] == pytest.approx(0.125)


@pytest.mark.parametrize("seed", range(6))
def test_nms_matches_plain_reference(seed):
    g = np.random.default_rng(seed)
    b = _random_boxes(60, seed, spread=2.0)
    scores = g.uniform(0, 1, 60)
    scores[::7] = 0.5  # ties: the lower index goes first
    b[10] = b[11]  # identical boxes with different scores
    thr = [0.1, 0.25, 0.5][seed % 3]
    keep = nms_aligned_3d(torch.tensor(b, dtype=torch.float64), torch.tensor(scores), thr).tolist()
    assert keep == _nms_ref(b, scores, thr)


def test_multiclass_nms_is_per_class_with_score_threshold():
    b = torch.tensor([[0, 0, 0, 1, 1, 1], [0.05, 0, 0, 1, 1, 1], [5, 5, 5, 1, 1, 1.0]])
    s = torch.tensor([[0.9, 0.8], [0.7, 0.95], [0.005, 0.3]])
    boxes, scores, labels = multiclass_nms_aligned_3d(b, s, score_threshold=0.01, iou_threshold=0.5)
    # class 0: box 0 suppresses box 1, box 2 is under the threshold; class 1: box 1 suppresses box 0
    assert labels.tolist() == [0, 1, 1]
    assert scores.tolist() == pytest.approx([0.9, 0.95, 0.3])
    assert torch.equal(boxes, b[[0, 1, 2]])
    e = multiclass_nms_aligned_3d(b[:0], s[:0], 0.01, 0.5)
    assert e[0].shape == (0, 6) and e[1].shape == (0,) and e[2].dtype == torch.long


# ---------------------------------------------------------------- assignment, losses
def test_assignment_by_hand():
    # level 0: six voxels on the x axis at x = 0..5; level 1: two voxels at x = 0.5 and 4.5
    pts = torch.tensor([[float(x), 0, 0] for x in range(6)] + [[0.5, 0, 0], [4.5, 0, 0]])
    lv = torch.tensor([0] * 6 + [1, 1])
    label2level = torch.tensor([0, 1])
    boxes = torch.tensor([[1.2, 0, 0, 1, 1, 1],   # class 0 -> level 0, nearest 2: x = 1 (0.04), x = 2 (0.64)
                          [2.6, 0, 0, 1, 1, 1],   # class 0 -> level 0, nearest 2: x = 3 (0.16), x = 2 (0.36)
                          [4.0, 0, 0, 4, 4, 4]])  # class 1 -> level 1, nearest 2 of its level: both
    labels = torch.tensor([0, 0, 1])
    got = assign_centre_topk(pts, lv, boxes, labels, label2level, top_k=2)
    # x = 2 is chosen by both level-0 boxes and goes to the nearer centre (box 1: 0.36 < 0.64)
    assert got.tolist() == [-1, 0, 1, 1, -1, -1, 2, 2]
    # top_k larger than a level: all its voxels; no box: all background
    got = assign_centre_topk(pts, lv, boxes[2:], labels[2:], label2level, top_k=5)
    assert got.tolist() == [-1] * 6 + [0, 0]
    assert assign_centre_topk(pts, lv, boxes[:0], labels[:0], label2level, 3).tolist() == [-1] * 8


def test_diou_loss_values():
    a = torch.tensor([[0.0, 0, 0, 2, 2, 2]])
    assert aligned_diou_loss(a, a).item() == pytest.approx(0.0, abs=1e-5)
    b = torch.tensor([[1.0, 0, 0, 2, 2, 2]])  # overlap 1x2x2 = 4, union 12; enclosing 3x2x2: diag^2 = 17
    assert aligned_diou_loss(a, b).item() == pytest.approx(1 - 4 / 12 + 1 / 17, rel=1e-5)
    c = torch.tensor([[4.0, 0, 0, 2, 2, 2]])  # disjoint: IoU 0, enclosing 6x2x2: diag^2 = 44
    assert aligned_diou_loss(a, c).item() == pytest.approx(1 + 16 / 44, rel=1e-5)


def test_focal_loss_matches_definition():
    logits = torch.tensor([[2.0, -1.0], [0.5, -3.0]])
    target = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.sigmoid(logits)
    ref = (-0.25 * (1 - p[0, 0]) ** 2 * torch.log(p[0, 0]) - 0.75 * p[0, 1] ** 2 * torch.log(1 - p[0, 1])
           - 0.75 * p[1, 0] ** 2 * torch.log(1 - p[1, 0]) - 0.25 * (1 - p[1, 1]) ** 2 * torch.log(p[1, 1]))
    assert sigmoid_focal_loss_sum(logits, target).item() == pytest.approx(ref.item(), rel=1e-6)


def test_sparse_union_add_matches_dense_sum():
    from pc3d.models.backbones3d._spconv_compat import import_spconv
    spconv = import_spconv()
    g = torch.Generator().manual_seed(0)
    shape = [4, 5, 6]

    def rand_tensor(n):
        flat = torch.randperm(2 * 4 * 5 * 6, generator=g)[:n]
        idx = torch.stack([flat // 120, flat // 30 % 4, flat // 6 % 5, flat % 6], 1).int()
        return spconv.SparseConvTensor(torch.randn(n, 3, generator=g), idx, shape, 2)

    a, b = rand_tensor(50), rand_tensor(70)
    s = sparse_union_add(a, b)
    dense = a.dense() + b.dense()
    assert torch.allclose(s.dense(), dense)
    occupied = (a.dense().abs().sum(1) > 0) | (b.dense().abs().sum(1) > 0)
    assert len(s.indices) == int(occupied.sum())


# ---------------------------------------------------------------- model
def _scene_points(n, batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    pts = torch.rand(n, 7, generator=g)
    pts[:, 1:4] = pts[:, 1:4] * torch.tensor([3.0, 2.5, 1.5]) + torch.tensor([1.0, -2.0, 0.1])
    pts[:, 0] = torch.randint(0, batch, (n,), generator=g).float()
    return pts


def _surface_points(n, batch, seed=0):
    """Points on a floor (z = 0.1) and a wall (x = 1): sparse voxels, as real scans."""
    pts = _scene_points(n, batch, seed)
    pts[: n // 2, 3] = 0.1
    pts[n // 2:, 1] = 1.0
    return pts


def _tiny(upsample="inverse", **kw):
    return TR3D(num_classes=18, voxel_size=0.1,
                backbone=dict(stem_channels=8, stem_stride=1, stem_pool=False, stage_channels=(8, 16, 16, 16),
                              stage_blocks=(1, 1, 1, 1)),
                neck=dict(out_channels=16, upsample=upsample), **kw)


def _gt(batch):
    boxes = [torch.tensor([[2.0, -1.0, 0.5, 1.0, 0.8, 1.0], [3.0, 0.0, 0.8, 1.5, 1.0, 1.2]]) for _ in range(batch)]
    labels = [torch.tensor([2, 1]) for _ in range(batch)]
    return [dict(gt_boxes=b, gt_labels=lab) for b, lab in zip(boxes, labels)]


def test_voxelize_scenes_means_and_origins():
    pts = _scene_points(500, 2)
    vox, origin = voxelize_scenes(pts, 0.25, 2, use_height=True)
    for i in range(2):
        np.testing.assert_allclose(origin[i].numpy(), pts[pts[:, 0] == i, 1:4].min(0).values.numpy())
    # the first voxel's features are the mean of its points' [r, g, b, z - z_min]
    b, z, y, x = vox.coords[0].tolist()
    m = pts[:, 0] == b
    grid = torch.floor((pts[:, 1:4] - origin[pts[:, 0].long()]) / 0.25).long()
    m &= (grid[:, 0] == x) & (grid[:, 1] == y) & (grid[:, 2] == z)
    ref = torch.cat([pts[m, 4:7], pts[m, 3:4] - origin[b, 2]], 1).mean(0)
    assert torch.allclose(vox.feats[0], ref, atol=1e-6)
    with pytest.raises(ValueError, match="points must be"):
        voxelize_scenes(pts[:, :5], 0.25, 2)
    with pytest.raises(ValueError, match="scene index"):
        voxelize_scenes(pts, 0.25, 1)


@pytest.mark.parametrize("upsample", ["inverse", "generative"])
def test_output_levels_shapes_and_voxel_centres(upsample):
    torch.manual_seed(0)
    model = _tiny(upsample).eval()
    pts = _surface_points(3000, 2)
    with torch.no_grad():
        out = model(inputs=dict(points=pts, batch_size=2), mode="tensor")
    assert len(out["cls"]) == 2  # encoder levels 1 and 2 (strides 4 and 8 of 0.1 m)
    _, origin = voxelize_scenes(pts, 0.1, 2)
    for lvl, stride in enumerate((4, 8)):
        cls, reg, centre, bidx = out["cls"][lvl], out["reg"][lvl], out["points"][lvl], out["batch_idx"][lvl]
        assert cls.shape == (len(centre), 18) and reg.shape == (len(centre), 6) and centre.shape[1] == 3
        cell = 0.1 * stride
        # every voxel centre sits at the middle of a cell of the level's grid
        frac = (centre - origin[bidx]) / cell - 0.5
        assert torch.allclose(frac, frac.round(), atol=1e-4)
        got = {(int(b),) + tuple(c) for b, c in zip(bidx, frac.round().long().tolist())}
        occupied = {(int(p[0]),) + tuple(int(v) for v in torch.floor((p[1:4] - origin[int(p[0])]) / cell))
                    for p in pts}
        if upsample == "inverse":  # exactly the cells holding points
            assert got == occupied
        else:  # generative: every occupied cell and new ones around them
            assert occupied <= got and len(got) > len(occupied)


@pytest.mark.parametrize("upsample", ["inverse", "generative"])
def test_loss_backward_reaches_every_parameter(upsample):
    torch.manual_seed(0)
    model = _tiny(upsample)
    losses = model(inputs=dict(points=_scene_points(3000, 2), batch_size=2), data_samples=_gt(2), mode="loss")
    assert set(losses) == {"loss_cls", "loss_bbox"} and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_scene_without_boxes_and_bad_input():
    model = _tiny()
    samples = _gt(2)
    samples[1] = dict(gt_boxes=torch.zeros(0, 6), gt_labels=torch.zeros(0, dtype=torch.long))
    loss = model(inputs=dict(points=_scene_points(2000, 2), batch_size=2), data_samples=samples, mode="loss")
    assert all(torch.isfinite(v) for v in loss.values())
    with pytest.raises(ValueError, match="gt_boxes"):
        model(inputs=dict(points=_scene_points(500, 1), batch_size=1), data_samples=[{}], mode="loss")
    with pytest.raises(ValueError, match=r"gt_labels of sample 0 must be in \[0, 18\)"):
        model(inputs=dict(points=_scene_points(500, 1), batch_size=1),
              data_samples=[dict(gt_boxes=torch.ones(1, 6), gt_labels=torch.tensor([18]))], mode="loss")
    with pytest.raises(ValueError, match="label2level"):
        _tiny(head=dict(label2level=(0, 1)))
    with pytest.raises(ValueError, match="upsample"):
        _tiny(upsample="nearest")


def test_any_pc3d_backbone_serves_as_encoder():
    model = TR3D(num_classes=18, voxel_size=0.1, backbone=dict(type="SparseConvBackbone", in_channels=3,
                                                               stage_channels=(8, 16), stage_blocks=(1, 1),
                                                               stage_strides=((2, 2, 2),), out_channels=16),
                 backbone_stride=(4, 2, 2), neck=dict(out_channels=16), head=dict(label2level=(0,) * 18))
    loss = model(inputs=dict(points=_scene_points(2000, 2), batch_size=2), data_samples=_gt(2), mode="loss")
    sum(loss.values()).backward()
    assert all(p.grad is not None for p in model.parameters())


def _sim_room(seed=3, density=150.0):
    import tempfile

    from pc3d.datasets.scannet.labels import read_label_map
    from pc3d.datasets.scannet.reader import read_scene
    from pc3d.datasets.scannet.sim_scan import simulate_room
    from pc3d.datasets.scannet.sim_writer import write_label_tsv, write_scene

    with tempfile.TemporaryDirectory() as d:
        room = simulate_room(seed, density=density)
        write_scene(Path(d) / "scene0000_00", "scene0000_00", room)
        item = read_scene(Path(d) / "scene0000_00", read_label_map(write_label_tsv(d)))
    item["points"] = item["points"].astype(np.float32)
    item["points"][:, 3:] /= 255.0
    item["frame_id"] = "scene0000_00"
    return item


def test_training_iterations_fit_a_simulated_room_and_feed_the_metric():
    from pc3d.datasets.collate import collate_batch
    from pc3d.evaluation.scannet import ScanNetDetMetric

    item = _sim_room()
    assert len(item["gt_boxes"]) >= 3
    torch.manual_seed(0)
    model = TR3D(num_classes=18, voxel_size=0.05,
                 backbone=dict(stem_channels=16, stem_stride=1, stem_pool=False, stage_channels=(16, 32, 32, 32),
                               stage_blocks=(1, 1, 1, 1)), neck=dict(out_channels=32, upsample="inverse"))
    batch = model.data_preprocessor(collate_batch([item]), True)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    losses = []
    for _ in range(40):
        loss = model(**batch, mode="loss")
        total = loss["loss_cls"] + loss["loss_bbox"]
        opt.zero_grad()
        total.backward()
        opt.step()
        losses.append((loss["loss_cls"].item(), loss["loss_bbox"].item()))
    assert losses[-1][0] < 0.3 * losses[0][0] and losses[-1][1] < 0.6 * losses[0][1], losses[::8]
    # BatchNorm statistics of this one room (the configs' momentum 0.01 barely moves in 40 steps)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        model(**batch, mode="tensor")
    model.eval()
    with torch.no_grad():
        out = model(**batch, mode="predict")
    assert out[0]["pred_boxes"].shape[1] == 6 and out[0]["pred_labels"].dtype == torch.int64
    metric = ScanNetDetMetric()
    metric.process({}, out)
    res = metric.compute_metrics(metric.results)
    assert res["mAP_0.25"] > 0.5, res  # the room it was fitted on


def test_configs_build():
    from mmengine.config import Config

    from pc3d.registry import MODELS

    real = Config.fromfile(str(ROOT / "configs" / "scannet" / "tr3d_scannet.py"))
    model = MODELS.build(real.model)
    assert isinstance(model, TR3D) and model.head.num_classes == 18 and model.voxel_size == 0.01
    assert model.neck.upsample == "generative" and model.level_strides[1:3] == [(16, 16, 16), (32, 32, 32)]
    n_params = sum(p.numel() for p in model.parameters())
    assert 10e6 < n_params < 30e6, n_params  # ResNet-34-style encoder with 64/128/128/128 planes
    sim = Config.fromfile(str(ROOT / "configs" / "scannet" / "tr3d_simrooms.py"))
    model = MODELS.build(sim.model)
    assert model.level_strides[1:3] == [(4, 4, 4), (8, 8, 8)] and model.voxel_size == 0.04  # 16 and 32 cm


# ---------------------------------------------------------------- tools end to end
def _run(args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_train_and_test_tools_end_to_end(tmp_path):
    data = tmp_path / "rooms"
    _run([str(ROOT / "tools" / "create_data.py"), "scannet-sim", "--out", str(data), "--train", "3", "--val", "2",
          "--density", "60"], tmp_path)
    _run([str(ROOT / "tools" / "create_data.py"), "scannet", "--root", str(data)], tmp_path)
    cfg = tmp_path / "tiny.py"
    base = ROOT / "configs" / "scannet" / "tr3d_simrooms.py"
    cfg.write_text(f"""_base_ = [{str(base)!r}]
voxel_size = 0.08
model = dict(voxel_size=voxel_size, backbone=dict(stem_channels=8, stage_channels=(8, 16, 16, 16)),
             neck=dict(out_channels=16))
train_dataloader = dict(batch_size=2, dataset=dict(data_root={str(data)!r}))
val_dataloader = dict(dataset=dict(data_root={str(data)!r}))
test_dataloader = dict(dataset=dict(data_root={str(data)!r}))
train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True)]
""")
    work = tmp_path / "work"
    out = _run([str(ROOT / "tools" / "train.py"), str(cfg), "--work-dir", str(work)], tmp_path)
    assert (work / "epoch_1.pth").exists() and "loss_bbox" in out and "scannet/mAP_0.25" in out
    out = _run([str(ROOT / "tools" / "test.py"), str(cfg), str(work / "epoch_1.pth"), "--work-dir", str(work)],
               tmp_path)
    assert "Epoch(test)" in out and "scannet/mAP_0.50" in out and "ScanNet detection" in out
    # The trained indoor model on a room written as a coloured PLY (8-bit red/green/blue), through tools/infer.py:
    # colour scaled to the model's 0..1, axis-aligned boxes in the JSON, the BEV picture and the 3D view written.
    from pc3d.io import write_points

    room = np.load(sorted((data / "points").glob("*.npz"))[-1])["points"]
    ply = tmp_path / "room.ply"
    write_points(ply, room, fields=("x", "y", "z", "red", "green", "blue"))
    _run([str(ROOT / "tools" / "infer.py"), str(cfg), str(work / "epoch_1.pth"), str(ply), "--out", str(tmp_path / "inf"),
          "--score-thr", "0.0"], tmp_path)
    det = json.loads((tmp_path / "inf" / "room.json").read_text())
    assert det["class_names"][0] == "cabinet" and "axis-aligned" in det["box_convention"]
    assert det["input"]["colour_scale"] == 255.0 and not det["input"]["filled_columns"]
    assert det["num_detections"] > 0 and all(len(d["box"]) == 6 for d in det["detections"])
    assert (tmp_path / "inf" / "room_bev.png").stat().st_size > 1000
    assert "scatter3d" in (tmp_path / "inf" / "room_3d.html").read_text()[:3_000_000].lower()


def test_bootstrap_over_rooms():
    from pc3d.evaluation.scannet import scannet_detection_metrics
    from pc3d.evaluation.scannet_bootstrap import scannet_map_bootstrap

    g = np.random.default_rng(0)
    scenes = []
    for i in range(12):
        gt = _random_boxes(4, i)
        labels = g.integers(0, 3, 4)
        pred = gt.copy()
        if i % 3 == 0:  # every third room: boxes shifted off their objects
            pred[:, :3] += 2.0
        scenes.append(dict(gt_boxes=gt, gt_labels=labels, pred_boxes=pred, pred_labels=labels,
                           pred_scores=g.uniform(0.1, 1, 4)))
    res = scannet_map_bootstrap(scenes, num_samples=200, seed=1)
    full = scannet_detection_metrics(*([s[k] for s in scenes] for k in
                                       ("gt_boxes", "gt_labels", "pred_boxes", "pred_labels", "pred_scores")))
    for t in (0.25, 0.5):
        lo, hi = res[t]["interval"]
        assert res[t]["mAP"] == full["mAP"][t] and lo <= res[t]["mAP"] <= hi and lo < hi
        assert res[t]["samples"].shape == (200,)
    # the weighted re-ranking equals the plain metric on the scenes drawn (duplicates included)
    from pc3d.evaluation.scannet_bootstrap import scene_flags, weighted_map
    flags = scene_flags(scenes)
    np.testing.assert_allclose(weighted_map(flags, np.ones(12)), [full["mAP"][0.25], full["mAP"][0.5]])
    w = np.array([2, 0, 1, 3, 0, 1, 1, 0, 2, 1, 0, 1])
    drawn = [s for s, k in zip(scenes, w) for _ in range(k)]
    plain = scannet_detection_metrics(*([s[k] for s in drawn] for k in
                                        ("gt_boxes", "gt_labels", "pred_boxes", "pred_labels", "pred_scores")))
    np.testing.assert_allclose(weighted_map(flags, w), [plain["mAP"][0.25], plain["mAP"][0.5]])
    perfect = scannet_map_bootstrap([s for i, s in enumerate(scenes) if i % 3], num_samples=50)
    assert perfect[0.5]["interval"] == [1.0, 1.0]
    with pytest.raises(ValueError, match="pred_scores"):
        scannet_map_bootstrap([{k: v for k, v in scenes[0].items() if k != "pred_scores"}])


def test_bev_view_draws_axis_aligned_boxes(tmp_path):
    from pc3d.visualization.bev import box_corners_bev, draw_bev

    b6 = np.array([[1.0, 2.0, 0.5, 2.0, 1.0, 1.0], [3.0, 1.0, 0.4, 0.5, 0.5, 0.8]], np.float32)
    b7 = np.concatenate([b6, np.zeros((2, 1), np.float32)], 1)
    np.testing.assert_array_equal(box_corners_bev(b6), box_corners_bev(b7))
    np.testing.assert_allclose(box_corners_bev(b6)[0], [[2, 2.5], [0, 2.5], [0, 1.5], [2, 1.5]])
    pts = np.random.default_rng(0).uniform(0, 4, (500, 6)).astype(np.float32)
    png = draw_bev(tmp_path / "room.png", pts, gt_boxes=torch.from_numpy(b6), pred_boxes=b6,
                   pred_scores=np.array([0.9, 0.5]))
    assert png.stat().st_size > 5_000
    with pytest.raises(ValueError, match=r"\(M, 6\) axis-aligned"):
        box_corners_bev(np.zeros((2, 5)))
