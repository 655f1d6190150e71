"""The OpenPCDet DSVT-P Waymo detector (``configs/dsvt/dsvt_pillar_waymo.py``) against the released code's outputs
(golden case ``dsvt_pillar_waymo_detector``), plus the behaviour of its stages on small inputs.

The golden case holds the official detector's random weights (OpenPCDet container), two real scans as points and
the official intermediates: VFE output, DSVT output, BEV map crops, the 2D backbone's crop and per-channel mean /
abs-max, the head's maps and the decoded top-500 candidates before NMS. Two runs:

* stages: pc3d's VFE from the points, then the official DSVT output fed into pc3d's scatter, 2D backbone and head
  (isolates every stage but the 3D backbone);
* end to end: the config's whole model with the whole checkpoint converted (needs the DSVT backbone's official
  conversion).

Tolerance per array: max |ours - official| <= 1e-4 (1 + max |official|); the pre-NMS candidates compare as matched
sets (a candidate whose score is within the tolerance of the top-K cut-off or the score threshold may be in or out).
"""
from pathlib import Path

import numpy as np
import pytest
import torch

from official_golden import assert_close, assert_voxels_close, load_case, require_case, tolerance
from pc3d.apis.convert import convert_state, load_official_state
from pc3d.models.structures import SparseVoxels

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "dsvt" / "dsvt_pillar_waymo.py"
CASE = "dsvt_pillar_waymo_detector"
HEAD_MAPS = ("center", "center_z", "dim", "rot", "iou")


def build_model():
    from mmengine.config import Config

    from pc3d.registry import MODELS

    return MODELS.build(Config.fromfile(str(CONFIG)).model).eval()


@pytest.fixture(scope="module")
def case():
    path = require_case("dsvt_pillar_waymo", CASE)
    data = load_case(path)
    data["state"] = load_official_state(data["checkpoint"], "openpcdet")
    return data


def run_stages(model, points, backbone3d=None):
    """The detector's stages on (N, 6) points (b, x, y, z, intensity, elongation); ``backbone3d`` (feats, coords)
    replaces the 3D backbone's output. Returns every intermediate the golden case holds, as numpy."""
    out = {}
    with torch.no_grad():
        voxels = model.voxel_encoder(model.voxelizer(torch.from_numpy(points), 2))
        out["vfe_voxel_features"], out["vfe_voxel_coords"] = voxels.feats.numpy(), voxels.coords.numpy()
        if backbone3d is None:
            voxels = model.backbone3d(voxels)
        else:
            voxels = SparseVoxels(torch.from_numpy(backbone3d[0]), torch.from_numpy(backbone3d[1]),
                                  voxels.spatial_shape, voxels.batch_size)
        out["backbone3d_voxel_features"], out["backbone3d_voxel_coords"] = voxels.feats.numpy(), voxels.coords.numpy()
        spatial = model.bev(voxels)
        out["spatial_features"] = spatial.numpy()
        feats2d = model.neck(model.backbone2d(spatial))
        out["spatial_features_2d"] = feats2d.numpy()
        del spatial
        preds = model.head(feats2d)
        out["preds"] = preds
        out["pre_nms"] = model.head.predict_pre_nms(preds)
        out["final"] = model.head.predict(preds)
    return out


def match_candidates(ours, official, sample, k_max=500, threshold=0.1):
    """Pre-NMS candidates as matched sets. ``ours``: dict of tensors from ``predict_pre_nms``; ``official``: the
    case's output arrays. Every candidate whose raw score is clear of the cut-offs (the top-K's K-th score when K
    are returned, and the score threshold) by more than the tolerance must be on both sides with the same label
    and values within the tolerance. Returns {array name: max abs diff over the matched pairs}."""
    off = {k: official[f"{k}_{sample}"] for k in ("pred_boxes", "pred_scores", "pred_labels", "raw_scores", "raw_iou")}
    off["pred_labels"] = off["pred_labels"] - 1  # OpenPCDet labels are 1-based
    mine = {k: ours[k].numpy() for k in off}
    tol = tolerance(off["raw_scores"])
    cut = off["raw_scores"].min() if len(off["raw_scores"]) == k_max else threshold

    def sure(scores):
        return (np.abs(scores - cut) > tol) & (np.abs(scores - threshold) > tol)

    box_tol = tolerance(off["pred_boxes"])
    # Pairwise: same label, every box value and the raw score within the tolerance.
    close = (off["pred_labels"][:, None] == mine["pred_labels"][None, :])
    close &= np.abs(off["pred_boxes"][:, None, :] - mine["pred_boxes"][None, :, :]).max(-1) <= box_tol
    close &= np.abs(off["raw_scores"][:, None] - mine["raw_scores"][None, :]) <= tol
    pairs, used = [], set()
    for i in range(len(off["raw_scores"])):
        js = [j for j in np.nonzero(close[i])[0] if j not in used]
        if js:
            used.add(js[0])
            pairs.append((i, js[0]))
        else:
            assert not sure(off["raw_scores"][i:i + 1])[0], (
                f"sample {sample}: official candidate {i} (label {off['pred_labels'][i]}, raw score "
                f"{off['raw_scores'][i]:.6f}, box {off['pred_boxes'][i].tolist()}) has no match in pc3d's")
    unmatched = sorted(set(range(len(mine["raw_scores"]))) - used)
    assert not sure(mine["raw_scores"][unmatched]).any(), (
        f"sample {sample}: pc3d candidates {unmatched[:5]} have no official match")
    i, j = (np.array(p, dtype=np.int64) for p in zip(*pairs))
    diffs = {}
    for key in ("pred_boxes", "pred_scores", "raw_scores", "raw_iou"):
        diffs[key] = assert_close(mine[key][j], off[key][i], f"{CASE} {key}_{sample}")
    assert np.array_equal(mine["pred_labels"][j], off["pred_labels"][i])
    return diffs


def check_dense(out, official, report):
    r0, r1, c0, c1 = (int(v) for v in official["crop_rows_cols"])
    crops = dict(spatial_features_crop=out["spatial_features"][:, :, r0:r1, c0:c1],
                 spatial_features_2d_crop=out["spatial_features_2d"][:, :, r0:r1, c0:c1],
                 spatial_features_2d_channel_mean=out["spatial_features_2d"].mean(axis=(2, 3)),
                 spatial_features_2d_channel_absmax=np.abs(out["spatial_features_2d"]).max(axis=(2, 3)),
                 head0_hm=out["preds"]["heatmap"].numpy())
    for name in HEAD_MAPS:
        crops[f"head0_{name}_crop"] = out["preds"][name][:, :, r0:r1, c0:c1].numpy()
    for name, ours in crops.items():
        report[name] = assert_close(ours, official[name], f"{CASE} {name}")
    # The rest of the BEV map is the scatter of the 3D backbone's output and zeros elsewhere.
    feats, coords = out["backbone3d_voxel_features"], out["backbone3d_voxel_coords"].astype(np.int64)
    spatial = out["spatial_features"]
    np.testing.assert_array_equal(spatial[coords[:, 0], :, coords[:, 2], coords[:, 3]], feats)
    assert np.count_nonzero(np.abs(spatial).sum(1)) <= len(coords)


def check_predictions(out, official, report):
    for b in range(2):
        for key, diff in match_candidates(out["pre_nms"][b], official, b).items():
            report[f"{key}_{b}"] = diff
        final, cand = out["final"][b], out["pre_nms"][b]
        # NMS keeps a subset of the candidates, per class in class order.
        assert 0 < len(final["pred_scores"]) <= len(cand["pred_scores"])
        assert torch.all(final["pred_labels"][1:] >= final["pred_labels"][:-1])


def print_report(title, report):
    print(f"\n{title}")
    for name, diff in report.items():
        print(f"  {name}: max abs diff {diff:.3e}")


def test_stages_equal_official_with_official_backbone3d(case, record_property):
    """VFE, scatter, 2D backbone, head maps and pre-NMS candidates, the 3D backbone's output taken from the case."""
    official = case["output"]
    model = build_model()
    state = {k: v for k, v in case["state"].items() if not k.startswith("backbone_3d.")}
    result = convert_state(state, model, "openpcdet", name=CASE)
    assert result.unconverted_modules == ["backbone3d"]
    model.load_state_dict(result.state_dict, strict=False)
    out = run_stages(model, case["input"]["points"],
                     (official["backbone3d_voxel_features"], official["backbone3d_voxel_coords"]))
    report = {}
    # The VFE's rows come in OpenPCDet's order, so they compare row for row.
    np.testing.assert_array_equal(out["vfe_voxel_coords"], official["vfe_voxel_coords"])
    report["vfe_voxel_features"] = assert_close(out["vfe_voxel_features"], official["vfe_voxel_features"],
                                                f"{CASE} vfe_voxel_features")
    check_dense(out, official, report)
    check_predictions(out, official, report)
    print_report(f"{CASE} (official backbone3d output fed in)", report)
    record_property("max_abs_diff", report)


def _dsvt_converts():
    from pc3d.models.backbones3d import DSVT

    return hasattr(DSVT, "convert_official_state")


@pytest.mark.slow
def test_end_to_end_equals_official(case, record_property):
    """The whole config model, the whole checkpoint converted: every intermediate and the pre-NMS candidates."""
    if not _dsvt_converts():
        pytest.skip("pc3d's DSVT has no convert_official_state yet: the official backbone_3d weights have no target")
    official = case["output"]
    model = build_model()
    result = convert_state(case["state"], model, "openpcdet", name=CASE)
    assert result.complete, f"modules left without weights: {result.unconverted_modules}"
    model.load_state_dict(result.state_dict, strict=True)
    out = run_stages(model, case["input"]["points"])
    report = {}
    report["vfe_voxel_features"] = assert_voxels_close(out["vfe_voxel_coords"], out["vfe_voxel_features"],
                                                       official["vfe_voxel_coords"], official["vfe_voxel_features"],
                                                       f"{CASE} vfe_voxel_features")
    report["backbone3d_voxel_features"] = assert_voxels_close(
        out["backbone3d_voxel_coords"], out["backbone3d_voxel_features"], official["backbone3d_voxel_coords"],
        official["backbone3d_voxel_features"], f"{CASE} backbone3d_voxel_features")
    check_dense(out, official, report)
    check_predictions(out, official, report)
    print_report(f"{CASE} (end to end)", report)
    record_property("max_abs_diff", report)


# ------------------------------------------------------------------------------------------ stage behaviour
def _voxelized(points, voxel_size, pc_range, batch_size):
    from pc3d.models import DynamicVoxelizer

    return DynamicVoxelizer(voxel_size, pc_range)(points, batch_size)


def test_vfe_rows_in_openpcdet_order_and_features_by_hand():
    from pc3d.models.voxel_encoders import DynPillarVFE3D

    torch.manual_seed(0)
    pc_range, voxel_size = [0.0, 0.0, -2.0, 4.0, 4.0, 4.0], [1.0, 1.0, 6.0]
    xyz = torch.rand(40, 3) * torch.tensor([4.0, 4.0, 6.0]) + torch.tensor([0.0, 0.0, -2.0])
    points = torch.cat([(torch.arange(40) % 2).float()[:, None], xyz, torch.rand(40, 2)], dim=1)
    vfe = DynPillarVFE3D(5, (8, 6), voxel_size, pc_range).eval()
    voxels = vfe(_voxelized(points, voxel_size, pc_range, 2))
    c = voxels.coords.long()
    key = (c[:, 0] * 4 + c[:, 3]) * 4 + c[:, 2]  # b, then x, then y (one z slice)
    assert torch.all(key[1:] > key[:-1])
    # By hand for one voxel: inputs [x, y, z, i, e, xyz - mean, xyz - centre] -> PFN 0 -> [x, max] -> PFN 1 -> max.
    v = 3
    inside = (points[:, 0].long() == c[v, 0]) & (torch.floor(points[:, 1]).long() == c[v, 3]) \
        & (torch.floor(points[:, 2]).long() == c[v, 2])
    pts = points[inside, 1:]
    centre = torch.tensor([c[v, 3] + 0.5, c[v, 2] + 0.5, 1.0])
    x = torch.cat([pts, pts[:, :3] - pts[:, :3].mean(0), pts[:, :3] - centre], dim=1)
    with torch.no_grad():
        l0, l1 = vfe.pfn_layers
        h = torch.relu(l0.norm(l0.linear(x)))
        h = torch.cat([h, h.max(0).values.expand_as(h)], dim=1)
        expected = torch.relu(l1.norm(l1.linear(h))).max(0).values
    torch.testing.assert_close(voxels.feats[v], expected, rtol=1e-5, atol=1e-6)
    empty = vfe(_voxelized(points[:0], voxel_size, pc_range, 1))
    assert empty.feats.shape == (0, 6) and empty.coords.shape == (0, 4)
    with pytest.raises(ValueError, match=r"points \(N, 5\)"):
        vfe(dict(points=torch.zeros(3, 4), point2voxel=torch.zeros(3, dtype=torch.long),
                 coords=torch.zeros(1, 4, dtype=torch.int32), spatial_shape=(1, 4, 4), batch_size=1))


def test_scatter3d_channel_layout_is_c_major():
    from pc3d.models.bev import BEVScatter, PointPillarScatter3d

    feats = torch.arange(6, dtype=torch.float32).view(2, 3) + 1
    coords = torch.tensor([[0, 1, 2, 3], [1, 0, 0, 1]], dtype=torch.int32)
    voxels = SparseVoxels(feats, coords, (2, 4, 5), 2)
    out = PointPillarScatter3d((5, 4, 2), 6)(voxels)
    assert out.shape == (2, 6, 4, 5)
    # Feature c of slice z sits at channel c * nz + z (BEVScatter's z * C + c differs for nz > 1).
    assert out[0, [1, 3, 5], 2, 3].tolist() == [1.0, 2.0, 3.0]
    assert out[1, [0, 2, 4], 0, 1].tolist() == [4.0, 5.0, 6.0]
    assert out.abs().sum() == feats.sum()
    assert not torch.equal(out, BEVScatter(3, 2)(voxels))
    with pytest.raises(ValueError, match="grid"):
        PointPillarScatter3d((5, 4, 1), 3)(voxels)


def test_res_backbone_blocks_are_residual():
    from pc3d.models.backbones2d import BaseBEVResBackbone

    torch.manual_seed(0)
    net = BaseBEVResBackbone(8, layer_nums=(1, 1), layer_strides=(1, 2), num_filters=(8, 16),
                             upsample_strides=(1, 2), upsample_channels=(4, 4)).eval()
    x = torch.randn(1, 8, 16, 16)
    for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        torch.nn.init.uniform_(bn.weight, 0.5, 1.5)
        torch.nn.init.normal_(bn.running_mean, 0.0, 0.2)
    with torch.no_grad():
        ref = net(x)
    assert ref.shape == (1, 8, 16, 16)
    # Every BatchNorm (2 per block, 1 per projection and per deblock) folds for inference, same outputs.
    from pc3d.models.fuse import fuse_conv_bn

    fused = BaseBEVResBackbone(8, layer_nums=(1, 1), layer_strides=(1, 2), num_filters=(8, 16),
                               upsample_strides=(1, 2), upsample_channels=(4, 4))
    fused.load_state_dict(net.state_dict())
    assert fuse_conv_bn(fused.eval()) == 2 * (2 * 2 + 1) + 2
    with torch.no_grad():
        torch.testing.assert_close(fused(x), ref, rtol=1e-5, atol=1e-5)
    block = net.blocks[0][1]  # an identity-shortcut block
    with torch.no_grad():
        torch.nn.init.zeros_(block.residual[4].weight)  # the second BatchNorm
        torch.nn.init.zeros_(block.residual[4].bias)
        y = torch.relu(torch.randn(1, 8, 16, 16))
        torch.testing.assert_close(block(y), y)  # residual branch zeroed -> relu(identity) = identity


def _tiny_head(**kw):
    from pc3d.models.heads import CenterHeadIoU

    return CenterHeadIoU(16, 3, [0.0, 0.0, -2.0, 16.0, 16.0, 4.0], [1.0, 1.0, 6.0], shared_channels=8, **kw)


def test_head_rectifies_scores_and_decodes_cells():
    torch.manual_seed(0)
    head = _tiny_head(test_cfg=dict(max_per_sample=20)).eval()
    preds = {k: v.detach() for k, v in head(torch.randn(2, 16, 16, 16)).items()}
    preds["heatmap"] = torch.full_like(preds["heatmap"], -8.0)
    preds["heatmap"][0, 1, 5, 7] = 2.0  # one confident Pedestrian at row 5, col 7
    preds["iou"][0, 0, 5, 7] = 0.2  # IoU (0.2 + 1) / 2 = 0.6
    preds["center"][0, :, 5, 7] = torch.tensor([0.25, 0.75])
    preds["rot"][0, :, 5, 7] = torch.tensor([0.0, 1.0])  # cos, sin -> heading pi / 2
    cand = head.predict_pre_nms(preds)
    assert len(cand[0]["pred_scores"]) == 1 and len(cand[1]["pred_scores"]) == 0
    s = torch.sigmoid(torch.tensor(2.0))
    torch.testing.assert_close(cand[0]["raw_scores"], s.view(1))
    torch.testing.assert_close(cand[0]["pred_scores"], (s ** (1 - 0.71) * 0.6 ** 0.71).view(1))
    assert cand[0]["pred_labels"].tolist() == [1]
    box = cand[0]["pred_boxes"][0]
    torch.testing.assert_close(box[:2], torch.tensor([7.25, 5.75]))
    torch.testing.assert_close(box[6], torch.tensor(torch.pi / 2))
    unrectified = _tiny_head(test_cfg=dict(max_per_sample=20, iou_rectifier=None)).eval()
    torch.testing.assert_close(unrectified.predict_pre_nms(preds)[0]["pred_scores"], s.view(1))


def test_head_nms_is_per_class():
    head = _tiny_head().eval()
    preds = {k: v.detach() for k, v in head(torch.randn(1, 16, 16, 16)).items()}
    preds["heatmap"] = torch.full_like(preds["heatmap"], -8.0)
    for name in ("center", "center_z", "dim", "rot", "iou"):
        preds[name].zero_()
    preds["dim"] += float(np.log(10.0))  # 10 m boxes: one cell apart they overlap with IoU 0.82
    preds["rot"][:, 0] = 1.0
    preds["heatmap"][0, 0, 4, 4], preds["heatmap"][0, 0, 4, 5] = 3.0, 2.0  # two Vehicles one cell apart
    preds["heatmap"][0, 2, 4, 5] = 1.0  # a Cyclist on the second Vehicle's cell
    final = head.predict(preds)[0]
    assert final["pred_labels"].tolist() == [0, 2]  # the weaker Vehicle is suppressed, the Cyclist is not
    torch.testing.assert_close(final["pred_boxes"][:, :2], torch.tensor([[4.0, 4.0], [5.0, 4.0]]))


def _corners(box):
    """Corners (4, 2) of a BEV box (x, y, dx, dy, heading), rotated counter-clockwise by heading (pc3d's boxes)."""
    x, y, dx, dy, h = box
    local = np.array([[-dx, -dy], [dx, -dy], [dx, dy], [-dx, dy]]) / 2
    rot = np.array([[np.cos(h), -np.sin(h)], [np.sin(h), np.cos(h)]])
    return local @ rot.T + [x, y]


def _official_nms_corners(box):
    """The rectangle OpenPCDet's multi_classes_nms_mmdet hands its BEV NMS kernel for box (x, y, dx, dy, heading):
    (x -/+ dx/2, y -/+ dy/2) with angle a = -heading + pi/2, whose corners the kernel turns about the centre by
    (x, y) -> ((x - cx) cos a + (y - cy) sin a, -(x - cx) sin a + (y - cy) cos a) (ioubev_nms rotate_around_center)."""
    x, y, dx, dy, h = box
    a = -h + np.pi / 2
    local = np.array([[-dx, -dy], [dx, -dy], [dx, dy], [-dx, dy]]) / 2
    turned = np.stack([local[:, 0] * np.cos(a) + local[:, 1] * np.sin(a),
                       -local[:, 0] * np.sin(a) + local[:, 1] * np.cos(a)], axis=1)
    return turned + [x, y]


def test_official_nms_boxes_are_the_boxes_with_dx_dy_exchanged():
    rng = np.random.default_rng(0)
    for _ in range(20):
        x, y, dx, dy, h = rng.uniform(-5, 5), rng.uniform(-5, 5), rng.uniform(0.5, 5), rng.uniform(0.5, 5), \
            rng.uniform(-np.pi, np.pi)
        official = _official_nms_corners((x, y, dx, dy, h))
        swapped = _corners((x, y, dy, dx, h))
        # The same rectangle: every official corner is a corner of the swapped box.
        dist = np.abs(official[:, None, :] - swapped[None, :, :]).max(-1).min(1)
        assert dist.max() < 1e-9
        # ... and not the box itself (dx != dy here).
        assert np.abs(official[:, None, :] - _corners((x, y, dx, dy, h))[None]).max(-1).min(1).max() > 1e-3


def test_head_nms_uses_the_official_exchanged_sizes_by_default():
    head = _tiny_head().eval()
    preds = {k: v.detach() for k, v in head(torch.randn(1, 16, 16, 16)).items()}
    preds["heatmap"] = torch.full_like(preds["heatmap"], -8.0)
    for name in ("center", "center_z", "dim", "rot", "iou"):
        preds[name].zero_()
    preds["dim"][:, 0] += float(np.log(4.0))  # 4 m x 1 m Vehicles along x, heading 0
    preds["rot"][:, 0] = 1.0
    preds["center"][0, 1, 5, 4] = -0.5  # the second Vehicle's centre 0.5 m beside the first's (y 4.5 vs 4.0)
    preds["heatmap"][0, 0, 4, 4], preds["heatmap"][0, 0, 5, 4] = 3.0, 2.0
    # True footprints overlap with IoU 0.5 / 1.5 = 0.33 (both kept); exchanged (1 m x 4 m) with 3.5 / 4.5 = 0.78.
    assert len(head.predict(preds)[0]["pred_scores"]) == 1
    head.test_cfg["nms_swap_size_xy"] = False
    assert len(head.predict(preds)[0]["pred_scores"]) == 2


def test_head_loss_trains_every_branch():
    torch.manual_seed(0)
    head = _tiny_head()
    x = torch.randn(2, 16, 16, 16)
    gt_boxes = [torch.tensor([[4.3, 6.6, 0.5, 4.0, 2.0, 1.5, 0.3]]),
                torch.tensor([[10.2, 3.1, 0.0, 1.0, 1.0, 1.8, -1.0], [3.0, 12.5, 0.2, 1.8, 0.8, 1.7, 2.0]])]
    gt_labels = [torch.tensor([0]), torch.tensor([1, 2])]
    losses = head.loss(head(x), gt_boxes, gt_labels)
    assert set(losses) == {"loss_heatmap", "loss_bbox", "loss_iou", "loss_iou_reg"}
    sum(losses.values()).backward()
    for name in head.branch_names:
        assert head.branches[name][-1].weight.grad.abs().sum() > 0, name
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        opt.zero_grad()
        total = sum(head.loss(head(x), gt_boxes, gt_labels).values())
        first = total.item() if first is None else first
        total.backward()
        opt.step()
    assert total.item() < 0.5 * first


def test_config_is_the_official_model():
    """The config's stages carry the values of the official ``dsvt_plain_1f_onestage.yaml``."""
    model = build_model()
    vfe, bev, bb, head = model.voxel_encoder, model.bev, model.backbone2d, model.head
    assert type(vfe).__name__ == "DynPillarVFE3D" and vfe.use_absolute_xyz and not vfe.with_distance
    assert [layer.linear.out_features for layer in vfe.pfn_layers] == [96, 192]
    assert vfe.pfn_layers[0].linear.in_features == 11 and vfe.pfn_layers[0].norm.eps == 1e-3
    assert type(bev).__name__ == "PointPillarScatter3d"
    assert (bev.nx, bev.ny, bev.nz, bev.out_channels) == (468, 468, 1, 192)
    assert type(bb).__name__ == "BaseBEVResBackbone" and bb.out_channels == 384
    assert [len(stage) - 1 for stage in bb.blocks] == [1, 2, 2]
    assert [stage[0].residual[0].stride[0] for stage in bb.blocks] == [1, 2, 2]
    assert [stage[0].residual[0].out_channels for stage in bb.blocks] == [128, 128, 256]
    assert [d[0].stride[0] for d in bb.deblocks] == [1, 2, 4] and [d[0].out_channels for d in bb.deblocks] == [128] * 3
    assert type(model.neck).__name__ == "IdentityNeck"
    assert type(head).__name__ == "CenterHeadIoU" and head.with_iou and head.num_classes == 3
    assert (head.grid.height, head.grid.width, head.grid.cell_x) == (468, 468, 0.32)
    assert head.shared[0].out_channels == 64 and head.shared[1].eps == 1e-3 and head.shared[1].momentum == 0.01
    assert {n: head.branches[n][-1].out_channels for n in head.branch_names} == dict(
        center=2, center_z=1, dim=3, rot=2, iou=1, heatmap=3)
    assert all(len(head.branches[n]) == 2 for n in head.branch_names)  # NUM_HM_CONV 2, num_conv 2
    assert head.test_cfg == dict(score_threshold=0.1, max_per_sample=500,
                                 post_center_limit_range=[-80.0, -80.0, -10.0, 80.0, 80.0, 10.0],
                                 iou_rectifier=[0.68, 0.71, 0.65], nms_iou_threshold=[0.7, 0.6, 0.55],
                                 nms_pre_max_size=4096, nms_post_max_size=500, nms_swap_size_xy=True)
    assert head.loss_weights == dict(heatmap=1.0, bbox=2.0, iou=1.0, iou_reg=2.0)
