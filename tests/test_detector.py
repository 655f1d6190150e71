"""CenterPoint detector: heatmap targets, encode/decode round trip, training on simulated frames, and
the evaluation path (dataset -> collate -> data preprocessor -> WaymoMetric) end to end."""
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_utils import simulate_with_cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY_RANGE = [-20.48, -20.48, -2.0, 20.48, 20.48, 4.0]


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    """3 train + 2 val frames simulated by tools/create_data.py (the dataset's own CLI)."""
    return simulate_with_cli(tmp_path_factory, 3, 2, seed=7)


def tiny_model_cfg(pc_range=TINY_RANGE, voxel=(0.32, 0.32, 6.0)):
    """A CenterPoint-Pillar small enough to train a few iterations in a test."""
    vs = list(voxel)
    return dict(
        type="CenterPoint",
        voxelizer=dict(type="HardVoxelizer", voxel_size=vs, pc_range=pc_range, max_points=16, max_voxels=(20000, 20000)),
        voxel_encoder=dict(type="PillarEncoder", in_channels=5, out_channels=16, voxel_size=vs, pc_range=pc_range),
        bev=dict(type="BEVScatter", in_channels=16),
        backbone2d=dict(type="SECONDBackbone", in_channels=16, out_channels=(16, 32), layer_nums=(1, 1), layer_strides=(2, 2)),
        neck=dict(type="SECONDFPN", in_channels=(16, 32), out_channels=(16, 16), upsample_strides=(1, 2)),
        head=dict(type="CenterHead", in_channels=32, num_classes=3, pc_range=pc_range, voxel_size=vs, out_size_factor=2,
                  shared_channels=16, head_channels=16))


def build(cfg):
    from pc3d.registry import MODELS

    return MODELS.build(cfg)


# ---------------------------------------------------------------- targets
def test_heatmap_peak_at_centre_cell_and_gaussian_window():
    from pc3d.models.heads.targets import BEVGrid, encode_targets, gaussian_radius

    grid = BEVGrid(x0=-10.0, y0=-10.0, cell_x=0.5, cell_y=0.5, height=40, width=40)
    box = torch.tensor([[1.3, -2.2, 0.5, 4.0, 2.0, 1.5, 0.3]])
    heatmap, index, mask, target = encode_targets(box, torch.tensor([0]), grid, num_classes=3, min_radius=1)
    col, row = int((1.3 + 10) // 0.5), int((-2.2 + 10) // 0.5)  # floor of the continuous cell position
    assert heatmap[0, row, col] == 1.0
    assert torch.nonzero(heatmap == 1.0).tolist() == [[0, row, col]]  # one peak, in the box's class channel
    assert heatmap[1:].abs().sum() == 0
    assert index[0] == row * grid.width + col and mask.tolist() == [True] + [False] * (len(mask) - 1)
    # The Gaussian has sigma = (2r + 1) / 6 and is cut to the (2r + 1)^2 window around the peak.
    r = max(1, int(gaussian_radius(torch.tensor([2.0 / 0.5]), torch.tensor([4.0 / 0.5]))[0]))
    sigma = (2 * r + 1) / 6
    assert heatmap[0, row, col + r].item() == pytest.approx(math.exp(-r * r / (2 * sigma ** 2)), rel=1e-5)
    assert heatmap[0, row + r, col - r].item() == pytest.approx(math.exp(-2 * r * r / (2 * sigma ** 2)), rel=1e-5)
    assert heatmap[0, row, col + r + 1] == 0 and heatmap[0, row - r - 1, col] == 0
    assert (heatmap[0] > 0).sum() == (2 * r + 1) ** 2
    # Regression target: sub-cell offset, z, log sizes, sin/cos heading.
    u, v = (1.3 + 10) / 0.5, (-2.2 + 10) / 0.5
    expect = [u - col, v - row, 0.5, math.log(4.0), math.log(2.0), math.log(1.5), math.sin(0.3), math.cos(0.3)]
    assert target[0].tolist() == pytest.approx(expect, abs=1e-5)


def test_gaussian_radius_grows_with_box_and_min_radius_applies():
    from pc3d.models.heads.targets import BEVGrid, encode_targets, gaussian_radius

    r = gaussian_radius(torch.tensor([1.0, 2.0, 4.0, 8.0]), torch.tensor([1.0, 2.0, 4.0, 8.0]))
    assert (r[1:] > r[:-1]).all() and (r > 0).all()
    grid = BEVGrid(-10.0, -10.0, 0.5, 0.5, 40, 40)
    small = torch.tensor([[0.1, 0.1, 0.0, 0.6, 0.6, 1.7, 0.0]])  # a pedestrian: tiny radius, clamped up to 3
    heatmap, *_ = encode_targets(small, torch.tensor([1]), grid, 3, min_radius=3)
    assert (heatmap[1] > 0).sum() == 7 * 7


def test_boxes_outside_grid_and_overlaps_take_max():
    from pc3d.models.heads.targets import BEVGrid, encode_targets

    grid = BEVGrid(-10.0, -10.0, 0.5, 0.5, 40, 40)
    boxes = torch.tensor([[0.0, 0.0, 0.0, 4.0, 2.0, 1.5, 0.0], [0.6, 0.0, 0.0, 4.0, 2.0, 1.5, 0.0],
                          [30.0, 0.0, 0.0, 4.0, 2.0, 1.5, 0.0]])
    heatmap, index, mask, _ = encode_targets(boxes, torch.tensor([0, 0, 0]), grid, 3)
    assert mask.sum() == 2  # the box centred at x = 30 m is off the grid
    assert heatmap.max() == 1.0 and (heatmap[0] == 1.0).sum() == 2  # overlapping Gaussians never exceed 1


def test_decode_inverts_encode():
    from pc3d.models.heads.targets import CODE_SIZE, encode_targets

    head = build(tiny_model_cfg()["head"]).eval()
    grid = head.grid
    gen = torch.Generator().manual_seed(0)
    # Boxes on distinct, well separated cells (a 4 x 4 lattice) with random sizes and headings.
    xs, ys = torch.meshgrid(torch.linspace(-15, 15, 4), torch.linspace(-15, 15, 4), indexing="ij")
    n = xs.numel()
    boxes = torch.stack([xs.flatten() + torch.rand(n, generator=gen), ys.flatten() + torch.rand(n, generator=gen),
                         torch.rand(n, generator=gen) * 2 - 1, 1 + 4 * torch.rand(n, generator=gen),
                         0.5 + 2 * torch.rand(n, generator=gen), 1 + torch.rand(n, generator=gen),
                         (torch.rand(n, generator=gen) * 2 - 1) * math.pi * 0.999], dim=1)
    labels = torch.randint(0, 3, (n,), generator=gen)
    heatmap, index, mask, target = encode_targets(boxes, labels, grid, 3)
    assert mask.sum() == n
    # Dense prediction maps that say exactly the targets: confident peaks, regression at peak cells.
    logits = torch.where(heatmap == 1, torch.tensor(8.0), torch.tensor(-8.0))
    reg = torch.zeros(CODE_SIZE, grid.height * grid.width)
    reg[:, index[:n]] = target[:n].t()
    out = head.decode_sample(logits, reg.view(CODE_SIZE, grid.height, grid.width))
    assert len(out["pred_boxes"]) == n
    order_pred = torch.argsort(out["pred_boxes"][:, 0] * 1000 + out["pred_boxes"][:, 1])
    order_gt = torch.argsort(boxes[:, 0] * 1000 + boxes[:, 1])
    torch.testing.assert_close(out["pred_boxes"][order_pred], boxes[order_gt], atol=1e-4, rtol=1e-5)
    assert out["pred_labels"][order_pred].tolist() == labels[order_gt].tolist()
    assert out["pred_labels"].dtype == torch.int64


def test_dense_regression_every_neighbour_decodes_its_box_and_nearest_box_wins():
    """reg_radius=1: the 3 x 3 cells around each peak regress the box (a peak decoded one cell off still
    gives the exact box); a cell two boxes claim regresses the box whose centre is nearer."""
    from pc3d.models.heads.targets import BEVGrid, decode_boxes, encode_targets

    grid = BEVGrid(-10.0, -10.0, 0.5, 0.5, 40, 40)
    boxes = torch.tensor([[1.1, 2.1, 0.4, 4.5, 1.9, 1.6, 0.3], [1.9, 2.1, 0.6, 4.0, 1.8, 1.5, -1.0],
                          [-9.9, -9.9, 0.0, 2.0, 1.0, 1.5, 0.0]])  # the third sits in the corner cell
    heatmap, index, mask, target = encode_targets(boxes, torch.tensor([0, 0, 1]), grid, 3, reg_radius=1)
    assert len(mask) == 500 * 9 and heatmap.eq(1).sum() == 3  # the heatmap does not change
    n = int(mask.sum())
    cells = index[:n]
    assert cells.unique().numel() == n  # one target per cell
    # Box 0 at cell (24, 22), box 1 at (24, 23): 3 x 3 each, 6 cells shared -> 12 distinct; the corner box
    # keeps only its 4 in-map cells.
    assert n == 12 + 4
    rows, cols = cells // grid.width, cells % grid.width
    decoded = decode_boxes(target[:n], rows, cols, grid)
    centre_x = (cols.float() + 0.5) * grid.cell_x + grid.x0
    centre_y = (rows.float() + 0.5) * grid.cell_y + grid.y0
    dist = torch.cdist(torch.stack([centre_x, centre_y], 1), boxes[:, :2])  # (n, 3)
    owner = dist.argmin(1)  # the nearest box of every claimed cell
    torch.testing.assert_close(decoded, boxes[owner], atol=1e-5, rtol=1e-5)
    assert owner.bincount(minlength=3).tolist() == [6, 6, 4]
    # reg_radius=0 keeps CenterPoint's one entry per box, at the peak.
    _, index0, mask0, target0 = encode_targets(boxes, torch.tensor([0, 0, 1]), grid, 3)
    assert int(mask0.sum()) == 3 and len(mask0) == 500
    with pytest.raises(ValueError, match="reg_radius must be >= 0"):
        encode_targets(boxes, torch.tensor([0, 0, 1]), grid, 3, reg_radius=-1)


def test_double_angle_decodes_axis_from_2h_and_direction_from_h():
    """double_angle: targets gain (sin 2h, cos 2h); decoding takes the axis from them and only the direction
    from (sin h, cos h), so a direction estimate shrunk towards zero (front and back alike) keeps the
    exact axis, and a flipped direction estimate gives the same axis turned by pi."""
    from pc3d.models.heads.targets import BEVGrid, decode_boxes, encode_targets

    grid = BEVGrid(-10.0, -10.0, 0.5, 0.5, 40, 40)
    hs = torch.tensor([-3.1, -2.0, -math.pi / 2, -0.5, 0.0, 0.7, math.pi / 2 - 1e-3, 2.5, 3.1])
    n = len(hs)
    boxes = torch.stack([torch.linspace(-8, 8, n), torch.zeros(n), torch.zeros(n), torch.full((n,), 4.0),
                         torch.full((n,), 2.0), torch.full((n,), 1.5), hs], dim=1)
    _, index, mask, target = encode_targets(boxes, torch.zeros(n, dtype=torch.long), grid, 3, double_angle=True)
    assert target.shape == (500, 10)
    t = target[mask]
    torch.testing.assert_close(t[:, 8], torch.sin(2 * hs)) and torch.testing.assert_close(t[:, 9], torch.cos(2 * hs))
    rows, cols = index[mask] // grid.width, index[mask] % grid.width

    def heading_err(dec, want):
        return (torch.remainder(dec[:, 6] - want + math.pi, 2 * math.pi) - math.pi).abs().max().item()

    assert heading_err(decode_boxes(t, rows, cols, grid), hs) < 1e-5
    blurred = t.clone()
    blurred[:, 6:8] = blurred[:, 6:8] * 0.05 + torch.tensor([0.03, -0.02])  # averaged front/back votes
    assert heading_err(decode_boxes(blurred, rows, cols, grid), hs) < 1e-5
    flipped = t.clone()
    flipped[:, 6:8] *= -1
    assert heading_err(decode_boxes(flipped, rows, cols, grid), hs + math.pi) < 1e-5
    # Without the extra columns the same blurred estimate loses the axis: the feature is what fixes it.
    assert heading_err(decode_boxes(blurred[:, :8], rows, cols, grid), hs) > 0.3
    head = build(dict(tiny_model_cfg()["head"], double_angle=True))
    assert head.code_size == 10
    with pytest.raises(ValueError, match=r"code_weights needs 10 entries \(double_angle\)"):
        build(dict(tiny_model_cfg()["head"], double_angle=True, code_weights=(1.0,) * 8))


def test_velocity_columns_round_trip_and_unknown_velocity_is_left_out_of_the_loss():
    """with_velocity: targets end with (vx, vy), decoding returns (K, 9) boxes carrying them (also after
    the double-angle columns), and a NaN GT velocity adds no loss and no gradient while the box's
    other columns still train."""
    from pc3d.models.heads.targets import BEVGrid, decode_boxes, encode_targets

    grid = BEVGrid(-10.0, -10.0, 0.5, 0.5, 40, 40)
    boxes = torch.tensor([[-4.1, 2.2, 0.3, 4.0, 2.0, 1.5, 0.4, 3.5, -1.25],
                          [6.3, -5.7, -0.2, 0.8, 0.7, 1.7, -2.0, -0.5, 0.75]])
    for double_angle in (False, True):
        _, index, mask, target = encode_targets(boxes, torch.tensor([0, 1]), grid, 3, double_angle=double_angle,
                                                with_velocity=True)
        assert target.shape == (500, 12 if double_angle else 10)
        t = target[mask]
        torch.testing.assert_close(t[:, -2:], boxes[:, 7:9])
        rows, cols = index[mask] // grid.width, index[mask] % grid.width
        torch.testing.assert_close(decode_boxes(t, rows, cols, grid, with_velocity=True), boxes, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match=r"with_velocity needs gt_boxes \(M, 9\).*\(2, 7\)"):
        encode_targets(boxes[:, :7], torch.tensor([0, 1]), grid, 3, with_velocity=True)
    with pytest.raises(ValueError, match="reg has 12 columns; expected 8 or 10"):
        decode_boxes(target[mask], rows, cols, grid)  # double-angle + velocity columns, velocity not declared

    head = build(dict(tiny_model_cfg()["head"], with_velocity=True, double_angle=True))
    assert head.code_size == 12 and [n for n, _ in head.branches][-1] == "vel"
    with pytest.raises(ValueError, match=r"code_weights needs 12 entries \(double_angle, with_velocity\)"):
        build(dict(tiny_model_cfg()["head"], with_velocity=True, double_angle=True, code_weights=(1.0,) * 10))
    torch.manual_seed(0)
    preds = head(torch.randn(1, 32, head.grid.height, head.grid.width))
    preds["reg"].retain_grad()
    unknown = boxes.clone()
    unknown[0, 7:9] = float("nan")
    loss = head.loss(preds, [unknown], [torch.tensor([0, 1])])["loss_bbox"]
    assert torch.isfinite(loss)
    loss.backward()
    grad = preds["reg"].grad[0].flatten(1)  # (12, H*W)
    hg = head.grid
    u, v = ((boxes[:, 0] - hg.x0) / hg.cell_x).long(), ((boxes[:, 1] - hg.y0) / hg.cell_y).long()
    cells = v * hg.width + u
    assert grad[10:, cells[0]].abs().sum() == 0 and grad[:10, cells[0]].abs().sum() > 0
    assert grad[10:, cells[1]].abs().sum() > 0
    # Known velocities: their L1 error is part of the loss (a NaN-free target costs more than a NaN one).
    known = head.loss({k: v.detach() for k, v in preds.items()}, [boxes], [torch.tensor([0, 1])])["loss_bbox"]
    assert known > loss.detach()
    out = head.predict({k: v.detach() for k, v in preds.items()})[0]
    # Some cells pass the score threshold, so the rotated NMS ran on the (K, 9) boxes' first 7 columns.
    assert out["pred_boxes"].shape[0] > 0 and out["pred_boxes"].shape[1] == 9


# ---------------------------------------------------------------- model on simulated frames
def _batch(root, split, indices, pipeline):
    from pc3d.datasets import SyntheticDataset, collate_batch

    ds = SyntheticDataset(str(root), split, pipeline=pipeline, seed=0)
    return collate_batch([ds[i] for i in indices])


@pytest.fixture
def one_thread():
    """Single-threaded torch: a few small convs gain nothing from threads on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("head_opts", [{}, dict(reg_radius=1, double_angle=True)], ids=["centerpoint", "dense-2h"])
def test_training_loss_falls(synthetic_root, one_thread, head_opts):
    torch.manual_seed(0)
    cfg = tiny_model_cfg()
    cfg["head"].update(head_opts)
    model = build(cfg)
    pipeline = [dict(type="RangeFilter", point_cloud_range=TINY_RANGE)]
    batch = _batch(synthetic_root, "train", [0, 1, 2], pipeline)
    assert sum(len(b) for b in batch["gt_boxes"]) > 0
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    model.train()
    for _ in range(12):
        data = model.data_preprocessor(batch, True)
        loss = sum(model(**data, mode="loss").values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-3:]) < 0.6 * np.mean(losses[:3]), losses
    # After training it predicts boxes in the documented format, with GT passed through for the metric.
    model.eval()
    with torch.no_grad():
        out = model(**model.data_preprocessor(batch, False), mode="predict")
    assert len(out) == 3
    for res, gt in zip(out, batch["gt_boxes"]):
        assert res["pred_boxes"].shape[1] == 7 and res["pred_boxes"].dtype == torch.float32
        assert res["pred_scores"].shape == res["pred_labels"].shape == res["pred_boxes"].shape[:1]
        assert res["pred_labels"].dtype == torch.int64
        assert torch.equal(res["gt_boxes"], gt)


def test_gt_as_prediction_scores_one_end_to_end(synthetic_root):
    """Dataset -> collate -> data preprocessor -> WaymoMetric, with GT copied into the prediction fields."""
    from mmengine.evaluator import Evaluator

    from pc3d.evaluation.waymo import WaymoMetric
    from pc3d.models import PointsDataPreprocessor

    pipeline = [dict(type="RangeFilter", point_cloud_range=[-75.0, -75.0, -3.0, 75.0, 75.0, 6.0])]
    evaluator = Evaluator(WaymoMetric())
    pre = PointsDataPreprocessor()
    for split, idx in (("val", [0, 1]), ("train", [0, 1, 2])):
        samples = pre(_batch(synthetic_root, split, idx, pipeline))["data_samples"]
        for s in samples:
            s.update(pred_boxes=s["gt_boxes"].clone(), pred_scores=torch.ones(len(s["gt_boxes"])),
                     pred_labels=s["gt_labels"].clone())
        evaluator.process(samples)
    metrics = evaluator.evaluate(5)
    assert metrics["Vehicle/L1_AP"] == pytest.approx(1.0) and metrics["Vehicle/L1_APH"] == pytest.approx(1.0)
    assert metrics["Vehicle/L2_AP"] == pytest.approx(1.0)
    # Shifting every prediction by 3 m breaks every match: the same path then scores 0.
    evaluator = Evaluator(WaymoMetric())
    samples = pre(_batch(synthetic_root, "val", [0, 1], pipeline))["data_samples"]
    for s in samples:
        shifted = s["gt_boxes"].clone()
        shifted[:, 0] += 3.0
        s.update(pred_boxes=shifted, pred_scores=torch.ones(len(shifted)), pred_labels=s["gt_labels"].clone())
    evaluator.process(samples)
    assert evaluator.evaluate(2)["Vehicle/L1_AP"] == 0.0


def test_frame_without_points_predicts_nothing():
    model = build(tiny_model_cfg()).eval()
    model.head.test_cfg["score_threshold"] = 0.5  # the untrained head's constant output is sigmoid(-2.19) = 0.1
    points = torch.tensor([[0.0, 100.0, 100.0, 0.0, 0.5, 0.0]])  # one point, outside the range
    with torch.no_grad():
        out = model(inputs=dict(points=points, batch_size=1), data_samples=[dict(frame_id="empty")], mode="predict")
    assert out[0]["frame_id"] == "empty" and out[0]["pred_boxes"].shape == (0, 7)


def test_bad_inputs_raise_clear_errors():
    from pc3d.models import PointsDataPreprocessor

    model = build(tiny_model_cfg())
    with pytest.raises(ValueError, match="points must be"):
        model.voxelizer(torch.zeros(10, 2), 1)
    with pytest.raises(ValueError, match="BEV map is"):
        model.head(torch.zeros(1, 32, 7, 7))
    with pytest.raises(ValueError, match="mode must be"):
        model(inputs=dict(points=torch.zeros(0, 6), batch_size=1), mode="nonsense")
    with pytest.raises(ValueError, match="needs 'points' and 'batch_size'"):
        PointsDataPreprocessor()({"gt_boxes": []})
    with pytest.raises(ValueError, match="code_weights needs 8"):
        build(dict(tiny_model_cfg()["head"], code_weights=(1.0,) * 7))


def test_sparse_conv_backbone_trains_on_cpu():
    """spconv's CPU backward asks CUDA for a stream; pc3d's compat patch makes it run (and only there)."""
    pytest.importorskip("spconv")
    from pc3d.models.structures import SparseVoxels

    torch.manual_seed(0)
    backbone = build(dict(type="SparseConvBackbone", in_channels=4, stage_channels=(8, 8, 16), stage_blocks=(1, 1, 1),
                          stage_strides=((2, 2, 2), (2, 2, 2)), out_channels=16))
    coords = torch.unique(torch.stack([torch.randint(0, 2, (300,)), torch.randint(0, 16, (300,)),
                                       torch.randint(0, 32, (300,)), torch.randint(0, 32, (300,))], 1), dim=0).int()
    feats = torch.randn(len(coords), 4, requires_grad=True)
    out = backbone(SparseVoxels(feats, coords, (16, 32, 32), 2))
    # z: 16 -> 8 -> 4, then the (3, 1, 1) stride-2 squeeze -> 2; x/y: 32 -> 16 -> 8.
    assert out.spatial_shape == (2, 8, 8) and out.feats.shape[1] == 16 and out.batch_size == 2
    assert set(out.coords[:, 0].tolist()) <= {0, 1}
    bev = build(dict(type="BEVScatter", in_channels=16, num_slices=2))(out)
    assert bev.shape == (2, 32, 8, 8)
    bev.square().sum().backward()
    assert feats.grad is not None and feats.grad.abs().sum() > 0
    assert all(p.grad is not None for p in backbone.parameters())


def test_bev_scatter_places_features_at_their_cells():
    from pc3d.models.structures import SparseVoxels

    scatter = build(dict(type="BEVScatter", in_channels=2, num_slices=3))
    coords = torch.tensor([[0, 0, 1, 2], [1, 2, 3, 0], [1, 1, 3, 0]], dtype=torch.int32)
    feats = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    bev = scatter(SparseVoxels(feats, coords, (3, 4, 5), 2))
    assert bev.shape == (2, 6, 4, 5)
    assert bev[0, 0:2, 1, 2].tolist() == [1.0, 2.0]  # z-slice 0 -> channels 0..1
    assert bev[1, 4:6, 3, 0].tolist() == [3.0, 4.0] and bev[1, 2:4, 3, 0].tolist() == [5.0, 6.0]
    assert bev.abs().sum() == feats.sum()
    with pytest.raises(ValueError, match="expects 3 z-slices"):
        scatter(SparseVoxels(feats, coords, (2, 4, 5), 2))
