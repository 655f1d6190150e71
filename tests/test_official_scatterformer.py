"""ScatterFormer against the official code's outputs (golden cases ``scatterformer_waymo*``), the checkpoint
conversion (its refusals and the tools/convert_checkpoint.py -> tools/test.py round trip), and the backbone's
own properties (shapes, gradients, batch independence, permutation equivariance with the matched pooling).

Each case folder holds the official module's config (``info.json``: FEATURE_DIM, WIN_SIZE, input channels), its
random weights in an OpenPCDet container, the input voxels and the official ``encoded_spconv_tensor``. The pc3d
backbone is built from that config, takes the converted weights, and must give the same pillar features
(matched by coords), spatial shape and stride.
"""
import copy
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from official_golden import assert_voxels_close, case_dirs, load_case, max_abs_diff, require_case, tolerance
from pc3d.apis.convert import CheckpointConversionError, convert_state, load_official_state
from pc3d.models.backbones3d import ScatterFormer
from pc3d.models.structures import SparseVoxels
from tests.test_backbones import C_IN, by_cell, random_voxels

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "scatterformer_waymo"
KNOWN = ["scatterformer_waymo", "scatterformer_waymo_small"]
CASES = sorted(set(KNOWN) | {c.name for c in case_dirs(PREFIX)})
# The official Waymo config's voxel grid (x, y, z) = (480, 480, 32), which the cases use; a case's config.txt
# (when shipped) states it again and is read instead.
GRID = (32, 480, 480)


class Detector(nn.Module):
    """Only the part that takes ``backbone_3d.*``: lets convert_state check a backbone-only checkpoint strictly."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone3d = backbone


def case_grid(case: Path):
    config = case / "config.txt"
    if config.is_file():
        found = re.search(r"grid_size \[(\d+), (\d+), (\d+)\]", config.read_text())
        if found:
            x, y, z = map(int, found.groups())
            return z, y, x
    return GRID


def backbone_for(case: Path, **kw):
    info = json.loads((case / "info.json").read_text())
    cfg = info["model_cfg"]
    grid = case_grid(case)
    torch.manual_seed(0)
    return ScatterFormer(info["input_channels"], channels=cfg["FEATURE_DIM"], window_size=cfg["WIN_SIZE"],
                         grid_depth=grid[0], **kw), grid, info


def converted(case: Path, **kw):
    """The pc3d backbone of a case with its converted weights (strict: every official tensor used), eval mode."""
    model, grid, info = backbone_for(case, **kw)
    result = convert_state(load_official_state(case / "checkpoint.pth", "scatterformer"), Detector(model),
                           "scatterformer", name=str(case))
    assert result.converted_modules == ["backbone3d"] and result.complete
    model.load_state_dict({k[len("backbone3d."):]: v for k, v in result.state_dict.items()}, strict=True)
    assert sum(v.numel() for v in model.state_dict().values()) == info["checkpoint_numel"]
    return model.eval(), grid


def run(model, grid, data):
    voxels = SparseVoxels(torch.from_numpy(data["input"]["voxel_features"]),
                          torch.from_numpy(data["input"]["voxel_coords"]).int(), grid, 2)
    with torch.no_grad():
        return model(voxels)


@pytest.mark.parametrize("name", CASES)
def test_official_case(name):
    case = require_case(PREFIX, name)
    data = load_case(case)
    model, grid = converted(case)
    out = run(model, grid, data)
    official = data["output"]
    assert out.spatial_shape == tuple(int(s) for s in official["spatial_shape"])
    assert grid[1] // out.spatial_shape[1] == int(official["encoded_spconv_tensor_stride"]) == 2
    diff = assert_voxels_close(out.coords.numpy(), out.feats.numpy(), official["voxel_coords"],
                               official["voxel_features"], f"{name} voxel_features")
    print(f"{name}: {len(out.coords)} pillars, voxel_features max abs diff {diff:.3e}")


def test_official_pairing_of_the_pillar_pooling_is_needed():
    # The official pooling pairs the max-pool's rows with pillars in (b, y, x) order; attending every pillar to
    # its own slots ('matched') is a different function and misses the official outputs.
    case = require_case(PREFIX, "scatterformer_waymo_small")
    data = load_case(case)
    model, grid = converted(case, pool_pairing="matched")
    out = run(model, grid, data)
    from official_golden import sort_rows_by_coords

    _, ours = sort_rows_by_coords(out.coords.numpy(), out.feats.numpy())
    _, official = sort_rows_by_coords(data["output"]["voxel_coords"], data["output"]["voxel_features"])
    assert max_abs_diff(ours, official) > 100 * tolerance(official)


# ----------------------------------------------------------------------------- conversion refusals
def small_case_state():
    case = require_case(PREFIX, "scatterformer_waymo_small")
    return case, load_official_state(case / "checkpoint.pth", "scatterformer")


def test_conversion_refuses_missing_extra_and_misshapen_tensors():
    case, state = small_case_state()
    model, _, _ = backbone_for(case)
    missing = dict(state)
    del missing["backbone_3d.stage1.0.attn_layers.1.qkv.weight"]
    with pytest.raises(CheckpointConversionError, match=r"backbone_3d\.stage1\.0\.attn_layers\.1\.qkv\.weight"):
        convert_state(missing, Detector(model), "scatterformer")
    extra = dict(state, **{"backbone_3d.stage3.0.norm_layers.0.weight": torch.ones(16)})
    with pytest.raises(CheckpointConversionError, match=r"backbone_3d\.stage3\.0\.norm_layers\.0\.weight"):
        convert_state(extra, Detector(model), "scatterformer")
    # A checkpoint of another width: the first tensor whose shape differs is named with both shapes.
    wide = ScatterFormer(8, channels=32)
    with pytest.raises(CheckpointConversionError, match=r"shape of 'backbone3d\.stem\.conv_in\.weight' differs: "
                                                        r"official gives \(16, 3, 3, 3, 8\), pc3d expects"):
        convert_state(state, Detector(wide), "scatterformer")
    # Another window size: the 1 x K depthwise kernels have 13 taps where the model has 11.
    narrow = ScatterFormer(8, channels=16, window_size=10)
    with pytest.raises(CheckpointConversionError, match=r"stage1\.0\.cffn_layers\.0\.conv_h\.weight.*\(1, 1, 13, 4\)"):
        convert_state(state, Detector(narrow), "scatterformer")
    with pytest.raises(CheckpointConversionError, match="ScatterFormer takes 'scatterformer' checkpoints"):
        convert_state(state, Detector(model), "openpcdet")


def test_converter_cli_writes_a_checkpoint_tools_test_runs(tmp_path, capsys):
    # The official checkpoint (backbone_3d only, small widths) into configs/scatterformer/scatterformer_waymo.py shrunk
    # to those widths; tools/test.py then evaluates it on a few generated frames (the other modules keep their
    # initialisation and are listed as unconverted).
    sys.path.insert(0, str(ROOT / "tests"))
    from engine_utils import make_tiny_dataset

    case, _ = small_case_state()
    data_root = make_tiny_dataset(tmp_path / "data", n_train=1, n_val=2)
    # +-20.48 m keeps the 32 z-slices the backbone is built for on a 128 x 128 grid.
    r = [-20.48, -20.48, -2.0, 20.48, 20.48, 4.0]
    cfg = tmp_path / "sf_small.py"
    cfg.write_text(f"""
_base_ = [{str(ROOT / 'configs' / 'waymo' / 'scatterformer_waymo.py')!r}]
model = dict(
    voxelizer=dict(pc_range={r}),
    voxel_encoder=dict(feat_channels=(8, 8), pc_range={r}),
    backbone3d=dict(in_channels=8, channels=16),
    bev=dict(in_channels=16),
    backbone2d=dict(in_channels=16, out_channels=(8, 8, 8), layer_nums=(1, 1, 1)),
    neck=dict(in_channels=(8, 8, 8), out_channels=(8, 8, 8)),
    head=dict(in_channels=24, pc_range={r}, shared_channels=8, head_channels=8))
_pipe = [dict(type='RangeFilter', point_cloud_range={r})]
test_dataloader = dict(_delete_=True, batch_size=1, num_workers=0, persistent_workers=False, drop_last=False,
                       sampler=dict(type='DefaultSampler', shuffle=False), collate_fn=dict(type='pc3d_collate_batch'),
                       dataset=dict(type='SyntheticDataset', data_root={str(data_root)!r}, split='val',
                                    pipeline=_pipe, test_mode=True))
val_dataloader = test_dataloader
test_evaluator = dict(_delete_=True, type='WaymoMetric')
val_evaluator = test_evaluator
""")
    # The converter's command line in this process (its main(argv)); tools/test.py in its own.
    spec = importlib.util.spec_from_file_location("convert_checkpoint", ROOT / "tools" / "convert_checkpoint.py")
    converter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(converter)
    dst = tmp_path / "converted.pth"
    args = ["--from", "scatterformer", "--config", str(cfg)]
    assert converter.main([str(case / "checkpoint.pth"), str(dst), *args]) == 0
    printed = capsys.readouterr().out
    assert "into backbone3d" in printed
    assert "modules left without weights (initialised as the config builds them): backbone2d, head, neck, " \
           "voxel_encoder" in printed
    saved = torch.load(dst, map_location="cpu", weights_only=True)
    official = load_official_state(case / "checkpoint.pth", "scatterformer")
    assert torch.equal(saved["state_dict"]["backbone3d.stages.1.layers.2.attn.qkv.weight"],
                       official["backbone_3d.stage2.0.attn_layers.2.qkv.weight"])
    assert torch.equal(saved["state_dict"]["backbone3d.stages.0.layers.0.convs.1.weight"],
                       official["backbone_3d.stage1.0.cffn_layers.0.conv_h.weight"].reshape(13, 4))
    # A truncated file is refused with its name, and nothing is written.
    bad = tmp_path / "truncated.pth"
    bad.write_bytes((case / "checkpoint.pth").read_bytes()[:1000])
    assert converter.main([str(bad), str(tmp_path / "never.pth"), *args]) == 1
    assert "truncated.pth" in capsys.readouterr().err and not (tmp_path / "never.pth").exists()
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "test.py"), str(cfg), str(dst), "--work-dir",
                           str(tmp_path / "work")], cwd=tmp_path, env=dict(os.environ, OMP_NUM_THREADS="1"),
                          capture_output=True, text=True)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "mAP_L1" in proc.stdout + proc.stderr


# ----------------------------------------------------------------------------- the backbone itself
SHAPE = (7, 24, 24)  # 7 + 1 z-slices: the stem leaves 3, the stride-2 conv 2 = (7 + 1) // 4 for the pooling


def small_backbone(**kw):
    torch.manual_seed(0)
    return ScatterFormer(C_IN, channels=16, num_heads=2, num_layers=(2, 1), window_size=6, grid_depth=7, **kw)


def randomize_norms(model):
    """BatchNorm statistics / affine away from identity, so eval-mode checks see them."""
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0, 0.2, generator=g)
                m.running_mean.normal_(0, 0.2, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
    return model


def test_official_network_sizes():
    # The official Waymo backbone (FEATURE_DIM 128, 64 input channels): 4,241,856 parameters.
    model = ScatterFormer(64)
    assert sum(p.numel() for p in model.parameters()) == 4_241_856
    assert model.pool.depth == 8 and model.conv_size == 13 and len(model.stages) == 2
    assert all(len(s.layers) == 3 for s in model.stages)
    with pytest.raises(ValueError, match="leave 8 z-slices, but the pillar pooling takes"):
        ScatterFormer(64, grid_depth=30)
    with pytest.raises(ValueError, match="pool_pairing must be one of"):
        ScatterFormer(64, pool_pairing="sorted")
    # Copies (the GPU tests' deepcopy, whole-model pickles) work and compute the same function.
    small = randomize_norms(small_backbone()).eval()
    voxels = random_voxels([50, 40], SHAPE, seed=8)
    with torch.no_grad():
        torch.testing.assert_close(copy.deepcopy(small)(voxels).feats, small(voxels).feats)


@pytest.mark.parametrize("pairing", ["official", "matched"])
def test_forward_backward_shapes(pairing):
    model = small_backbone(pool_pairing=pairing)
    voxels = random_voxels([70, 45], SHAPE, seed=1)
    voxels.feats.requires_grad_(True)
    out = model(voxels)
    assert out.spatial_shape == (1, 12, 12) and out.batch_size == 2
    assert out.feats.shape == (out.coords.shape[0], 16) and out.coords.dtype == torch.int32
    # One row per occupied pillar of the stride-2 grid the stage convs reach.
    assert bool((out.coords[:, 1] == 0).all())
    assert len(torch.unique(out.coords[:, [0, 2, 3]], dim=0)) == len(out.coords)
    out.feats.square().sum().backward()
    assert voxels.feats.grad is not None and voxels.feats.grad.abs().sum() > 0
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad, f"parameters without a finite gradient: {no_grad}"


def test_matched_pooling_is_permutation_equivariant_and_batch_independent():
    model = randomize_norms(small_backbone(pool_pairing="matched")).eval()
    voxels = random_voxels([60, 50], SHAPE, seed=2)
    perm = torch.randperm(voxels.feats.shape[0], generator=torch.Generator().manual_seed(3))
    shuffled = SparseVoxels(voxels.feats[perm], voxels.coords[perm], SHAPE, 2)
    first = voxels.coords[:, 0] == 0
    alone = SparseVoxels(voxels.feats[first], voxels.coords[first], SHAPE, 1)
    with torch.no_grad():
        a, b, c = model(voxels), model(shuffled), model(alone)
    torch.testing.assert_close(by_cell(a), by_cell(b), atol=1e-5, rtol=1e-5)
    in_pair = SparseVoxels(a.feats[a.coords[:, 0] == 0], a.coords[a.coords[:, 0] == 0], a.spatial_shape, 1)
    torch.testing.assert_close(by_cell(in_pair), by_cell(c), atol=1e-5, rtol=1e-5)


def test_official_pooling_pairs_max_pool_rows_with_sorted_pillars():
    # The two pairings share every weight and differ only in which pillar's slots a query attends to: the
    # official one gives row i the slots of the i-th pillar in (b, y, x) order.
    model = randomize_norms(small_backbone()).eval()
    voxels = random_voxels([60, 50], SHAPE, seed=4)
    captured = {}
    model.pool.register_forward_pre_hook(lambda _m, args: captured.update(x=args[0]))
    with torch.no_grad():
        official = model(voxels)
        x = captured["x"]
        src = model.pool.max_pool(x)
        idx = x.indices.long()
        key = (idx[:, 0] * 12 + idx[:, 2]) * 12 + idx[:, 3]
        pillars = torch.unique(key)
        out_key = (src.indices[:, 0].long() * 12 + src.indices[:, 2].long()) * 12 + src.indices[:, 3].long()
        assert not torch.equal(out_key, pillars), "the draw should give spconv an order other than the sorted one"
        expected = []
        for i in range(len(pillars)):
            rows = key == pillars[i]
            slots = torch.zeros(model.pool.depth, 16)
            mask = torch.ones(model.pool.depth, dtype=torch.bool)
            slots[idx[rows, 1]] = x.features[rows]
            mask[idx[rows, 1]] = False
            q = src.features[i:i + 1, None]
            att, _ = model.pool.attn(q, (slots + model.pool.slot_embedding)[None], slots[None],
                                     key_padding_mask=mask[None])
            expected.append(model.pool.norm(att[0, 0] + src.features[i]))
    torch.testing.assert_close(official.feats, torch.stack(expected), atol=1e-5, rtol=1e-5)
    assert torch.equal(official.coords, src.indices)


def test_rejects_wrong_grid_depth_and_handles_empty_input():
    model = small_backbone().eval()
    with pytest.raises(ValueError, match="grid_depth=7"):
        model(random_voxels([10], (4, 24, 24)))
    empty = SparseVoxels(torch.zeros(0, C_IN), torch.zeros(0, 4, dtype=torch.int32), SHAPE, 1)
    out = model(empty)
    assert out.feats.shape == (0, 16) and out.coords.shape == (0, 4) and out.spatial_shape == (1, 12, 12)


@pytest.mark.parametrize("name, grid", [("configs/scatterformer/scatterformer_waymo.py", (32, 480, 480)),
                                        ("configs/scatterformer/scatterformer_nuscenes.py", (40, 360, 360)),
                                        ("configs/scatterformer/scatterformer_synthetic.py", (16, 320, 320))])
def test_configs_build_the_official_layout(name, grid):
    from mmengine.config import Config

    from pc3d.registry import MODELS

    cfg = Config.fromfile(str(ROOT / name))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    backbone = model.backbone3d
    assert isinstance(backbone, ScatterFormer) and backbone.grid_depth == grid[0]
    assert backbone.pool.depth == (grid[0] + 1) // 4 and backbone.pool.pairing == "official"
    assert [len(s.layers) for s in backbone.stages] == [3, 3]
    # The BEV comes at stride 2; the 2D backbone's first stage keeps it and the head works at stride 2.
    assert cfg.model.backbone2d.layer_strides[0] == 1 and cfg.model.head.out_size_factor == 2


@pytest.mark.parametrize("kernel", [(3, 3, 3), (1, 1, 7), (1, 7, 1)])
def test_converted_depthwise_kernel_is_the_official_cross_correlation(kernel):
    # The official SparseDwConv computes out[p, c] = sum_k w[kz, ky, kx, c] * in[p + k - pad, c] over occupied
    # cells; its (kz, ky, kx, C) weight flattened z-major is pc3d's (K, C) depthwise weight, no bias.
    from pc3d.models.backbones3d.sparse_depthwise import DepthwiseSubmConv, neighbor_table

    voxels = random_voxels([40, 30], (3, 9, 9), seed=6)
    g = torch.Generator().manual_seed(7)
    official = torch.randn(*kernel, C_IN, generator=g)
    conv = DepthwiseSubmConv(C_IN, kernel, bias=False)
    assert conv.bias is None
    conv.weight.data.copy_(official.reshape(-1, C_IN))
    out = conv(voxels.feats, neighbor_table(voxels.coords, voxels.spatial_shape, conv.offsets))
    grid = torch.zeros(2, C_IN, 3, 9, 9, dtype=torch.float64)
    b, z, y, x = voxels.coords.long().unbind(1)
    grid[b, :, z, y, x] = voxels.feats.double()
    dense = torch.nn.functional.conv3d(grid, official.permute(3, 0, 1, 2)[:, None].double(),
                                       padding=tuple(k // 2 for k in kernel), groups=C_IN)
    torch.testing.assert_close(out.detach().double(), dense[b, :, z, y, x], atol=1e-5, rtol=1e-5)


def test_spconv_cpu_ops_are_deterministic_with_several_threads(real_scans):
    # spconv 2.3.8's CPU convs race with more than one intra-op thread (pc3d runs them on one): on the voxels of
    # the real scans, chained 128-channel submanifold convs, a strided conv and a max-pool give the one-thread
    # outputs and gradients with two threads (unpatched, every two-thread run differs by about 0.1).
    from pc3d.models.backbones3d._spconv_compat import import_spconv

    spconv = import_spconv()
    coords = []
    for b, scan in enumerate(list(real_scans.values())[:2]):
        scan = scan[(scan[:, :2].abs() < 8).all(1)]  # the bundled copies' 8 m crop, also for the full scans
        cell = torch.floor((scan[:, [2, 1, 0]] - torch.tensor([-2.0, -76.8, -76.8]))
                           / torch.tensor([0.1875, 0.32, 0.32])).long()
        inside = ((cell >= 0) & (cell < torch.tensor([32, 480, 480]))).all(1)
        cells = torch.unique(cell[inside], dim=0)
        coords.append(torch.cat([torch.full((len(cells), 1), b), cells], 1))
    coords = torch.cat(coords).int()
    feats = torch.randn(len(coords), 16, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    net = spconv.SparseSequential(spconv.SubMConv3d(16, 128, 3, padding=1, bias=False), nn.ReLU(),
                                  spconv.SubMConv3d(128, 128, 3, padding=1, bias=False),
                                  spconv.SparseConv3d(128, 32, 3, stride=2, padding=1, bias=False),
                                  spconv.SparseMaxPool3d(2, stride=2))
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2, 2, 2):
            torch.set_num_threads(n)
            x = feats.clone().requires_grad_(True)
            out = net(spconv.SparseConvTensor(x, coords, [33, 480, 480], 2))
            weight = torch.linspace(-1, 1, out.features.numel()).view_as(out.features)
            grads = torch.autograd.grad((out.features * weight).sum(), [x, net[0].weight, net[2].weight])
            results.append((out.features.detach(), *grads))
    finally:
        torch.set_num_threads(threads)
    for run in results[1:]:
        for got, want in zip(run, results[0]):
            assert torch.equal(got, want)
